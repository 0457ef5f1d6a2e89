"""`covgan export`, `serve` and `query`: SavedModels for TF Serving, a server, a client."""

import json
import logging
import sys

import click

from covgan.cli.common import emit, mixed_precision_for_this_command
from covgan.cli.explain import START_HELP
from covgan.explain.settings import CONVOLUTIONS, DEFAULT_TUNED_IMAGES, TUNED_IMAGES, Z1_STARTS
from covgan.export.settings import ServingSettings

EXPORT = ServingSettings()


@click.command()
@click.option("--run", "run_dir", required=True, type=click.Path(file_okay=False),
              help="A run folder that `covgan train` wrote.")
@click.option("--out", default="savedmodels", show_default=True, type=click.Path(file_okay=False),
              help="Model base folder; models.config is written here.")
@click.option("--version", "version", type=click.IntRange(min=1), default=None,
              help="Version number (default: one more than the highest there).")
@click.option("--traverse-steps", type=click.IntRange(min=2), default=EXPORT.traverse_steps,
              show_default=True, help="S: images per traversal, counterpart to image.")
@click.option("--invert-steps", type=click.IntRange(min=1), default=EXPORT.inversion.steps,
              show_default=True, help="Maximum Adam steps of the exported inversion.")
@click.option("--restarts", type=click.IntRange(min=1), default=EXPORT.inversion.restarts,
              show_default=True, help="Random starts of the exported inversion per image.")
@click.option("--start", type=click.Choice(Z1_STARTS), default=EXPORT.inversion.z1_start,
              show_default=True, help=START_HELP + " With encoder, the SavedModel holds E.")
@click.option("--seed", type=int, default=EXPORT.seed, show_default=True,
              help="Seed of the exported inversion's random starts.")
@click.option("--layer", default=None, help="Grad-CAM layer (default: the last convolution).")
@click.option("--tune-steps", type=click.IntRange(min=0), default=None,
              help="Steps of the explain signature's per-image tuning of a gated G's branch "
                   "(0: none; explain_untuned never tunes). [default: `covgan explain`'s]")
@click.option("--tune-where", type=click.Choice(TUNED_IMAGES), default=None,
              help="Which images the explain signature tunes: all, or those whose untuned "
                   "explanation the trust rule does not trust. [default: `covgan explain`'s, "
                   f"{DEFAULT_TUNED_IMAGES}]")
@click.option("--tuning-convolution", type=click.Choice(CONVOLUTIONS), default=None,
              help="How that tuning convolves: grouped is `covgan explain`'s arithmetic and "
                   "faster but needs a server with oneDNN's CPU kernels or a GPU; patches "
                   "runs on any TF Serving build. [default: grouped where this machine has its "
                   "gradient, else patches]")
@click.option("--mixed-precision", is_flag=True,
              help="The exported G and C compute in bfloat16 (CPU) or float16 (GPU); every "
                   "signature's inputs and outputs stay float32.")
def export(run_dir, out, version, traverse_steps, invert_steps, restarts, start, seed, layer,
           tune_steps, tune_where, tuning_convolution, mixed_precision):
    """Export the run as SavedModels for TF Serving (covgan_generator, covgan_classifier).

    Signatures: generate (serving_default), traverse, invert, explain (what `covgan
    explain` computes: tuning, every map, the trust verdict) and explain_untuned on
    the generator; classify (serving_default) and gradcam on the classifier. Each
    version is written atomically with TF Serving warm-up requests, and
    OUT/models.config is created or updated.

    \b
    Example:
      covgan export --run runs/gan --out savedmodels
    """
    import dataclasses

    from covgan.export.savedmodel import export_run
    from covgan.training.runs import load_run

    mixed_precision_for_this_command(mixed_precision)  # before any model loads
    run = load_run(run_dir)
    inversion = dataclasses.replace(EXPORT.inversion, steps=invert_steps, restarts=restarts,
                                    z1_start=start)
    settings = ServingSettings(traverse_steps=traverse_steps, inversion=inversion, seed=seed,
                               gradcam_layer=layer, tune_steps=tune_steps, tune_where=tune_where,
                               tuning_convolution=tuning_convolution)
    emit(export_run(run, out, version=version, settings=settings))


@click.command()
@click.option("--model-config", required=True, type=click.Path(dir_okay=False),
              help="A ModelServerConfig text proto (savedmodels/models.config).")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on (0.0.0.0 accepts remote clients).")
@click.option("--port", type=click.IntRange(min=0, max=65535), default=8500, show_default=True,
              help="gRPC port (0: any free port).")
@click.option("--rest-port", type=click.IntRange(min=0, max=65535), default=8501,
              show_default=True, help="REST port (0: any free port).")
@click.option("--no-rest", is_flag=True, help="Serve gRPC only.")
@click.option("--workers", type=click.IntRange(min=1), default=4, show_default=True,
              help="Signatures run at once.")
@click.option("--max-batch", type=click.IntRange(min=1), default=64, show_default=True,
              help="Largest batch a request may carry.")
@click.option("--max-explain-batch", type=click.IntRange(min=1), default=8, show_default=True,
              help="Largest batch an explain, explain_untuned or invert request may carry "
                   "(each image takes seconds); more are refused with INVALID_ARGUMENT.")
@click.option("--explain-workers", type=click.IntRange(min=1), default=1, show_default=True,
              help="Explanations (explain, explain_untuned, invert) running at once, in a pool "
                   "of their own: --workers stay free for classify and the others.")
@click.option("--max-request-mb", type=click.IntRange(min=1), default=64, show_default=True,
              help="Largest request accepted, decoded (gRPC) or as sent (REST).")
@click.option("--grace", type=click.FloatRange(min=0), default=30.0, show_default=True,
              help="Seconds in-flight requests get to finish on SIGTERM.")
@click.option("--connection-timeout", type=click.FloatRange(min=0, min_open=True), default=30.0,
              show_default=True,
              help="REST: seconds a connection may take to send a request's headers (or stay "
                   "idle between requests), and again its body; it is dropped after them.")
@click.option("--max-connections", type=click.IntRange(min=1), default=1024, show_default=True,
              help="REST: connections held at once, waiting or in a request (a waiting one "
                   "costs no thread); more are answered 503.")
@click.option("--log-level", type=click.Choice(["debug", "info", "warning"]), default="info",
              show_default=True,
              help="info: one line per finished request; debug: a line as each one starts too; "
                   "warning: warnings and errors only.")
def serve(model_config, host, port, rest_port, no_rest, workers, max_batch, max_explain_batch,
          explain_workers, max_request_mb,
          grace, connection_timeout, max_connections, log_level):
    """Serve exported models over TF Serving's gRPC and REST APIs.

    Loads every model version the config's version policy names, replays their
    warm-up requests, then prints one JSON line (addresses and models) on stdout
    and logs one line per request on stderr. SIGTERM finishes in-flight requests
    and exits 0.

    \b
    Example:
      covgan serve --model-config savedmodels/models.config --port 8500 --rest-port 8501
    """
    from covgan.serving.server import Server, ServerSettings, serve_until_signalled

    level = getattr(logging, log_level.upper())
    # debug is for the server's own lines: other libraries' debug output stays off.
    logging.basicConfig(level=max(level, logging.INFO), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(message)s")
    logging.getLogger("covgan.serve").setLevel(level)
    settings = ServerSettings(host=host, port=port, rest_port=None if no_rest else rest_port,
                              workers=workers, max_batch=max_batch,
                              max_explain_batch=max_explain_batch,
                              explain_workers=explain_workers,
                              max_request_mb=max_request_mb, grace=grace,
                              connection_timeout=connection_timeout,
                              max_connections=max_connections)
    server = Server(model_config, settings)

    def ready():
        click.echo(json.dumps(server.describe()))
        sys.stdout.flush()

    serve_until_signalled(server, ready)


@click.command()
@click.option("--server", required=True, help="HOST:PORT of a gRPC endpoint (TF Serving or "
                                              "`covgan serve`).")
@click.option("--image", "images", multiple=True, type=click.Path(dir_okay=False),
              help="A radiograph to explain (repeatable).")
@click.option("--seed", type=int, default=None, help="Draw (z1, z2) from this seed instead.")
@click.option("--count", type=click.IntRange(min=1), default=1, show_default=True,
              help="With --seed: how many codes to draw.")
@click.option("--signature",
              type=click.Choice(["explain", "explain_untuned", "traverse", "generate"]),
              default=None, help="Default: explain for --image, traverse for --seed.")
@click.option("--batch", type=click.IntRange(min=1), default=8, show_default=True,
              help="Images per explain request (a server bounds it: `covgan serve "
                   "--max-explain-batch`); more images are sent in several requests.")
@click.option("--model", default="covgan_generator", show_default=True,
              help="The served model to ask.")
@click.option("--model-version", type=click.IntRange(min=1), default=None,
              help="Default: the latest the server has.")
@click.option("--timeout", type=click.FloatRange(min=1), default=600.0, show_default=True,
              help="Seconds to wait for the server's answer (the gRPC deadline).")
@click.option("--out", required=True, type=click.Path(file_okay=False),
              help="Output folder: the files `covgan explain` or `traverse` would write.")
@click.option("--overwrite", is_flag=True, help="Replace OUT if it exists.")
def query(server, images, seed, count, signature, batch, model, model_version, timeout, out,
          overwrite):
    """Ask a model server for explanations; write the same files as the local commands.

    --image with explain writes what `covgan explain` writes (report.html
    included; explain_untuned: without the per-image tuning); --image with
    traverse inverts on the server, then traverses;
    --seed with traverse or generate draws random codes.

    \b
    Example:
      covgan query --server localhost:8500 --image chest.png --out out/served
      covgan query --server localhost:8500 --seed 7 --count 4 --out out/walks
    """
    from covgan.cli.queries import query_codes, query_images
    from covgan.errors import CovganError
    from covgan.serving.client import Client

    if bool(images) == (seed is not None):
        raise CovganError("Give either --image FILE or --seed N.")
    signature = signature or ("explain" if images else "traverse")
    if images and signature == "generate":
        raise CovganError("generate takes codes: use --seed N with --signature generate.")
    if seed is not None and signature.startswith("explain"):
        raise CovganError("explain takes images: use --image FILE.")
    client = Client(server, timeout=timeout)
    try:
        if images:
            payload = query_images(client, model, model_version, signature, images, out,
                                   overwrite, batch=batch)
        else:
            payload = query_codes(client, model, model_version, signature, seed, count, out,
                                  overwrite)
    finally:
        client.close()
    emit(payload)
