"""`covgan demo`: the whole job on the built-in phantoms, by running the real commands.

Each stage is the `covgan` command a user would type (printed before it runs),
in its own process, with its progress on stderr and its JSON result kept for
the summary. Stages whose results are already in OUT are skipped, so an
interrupted demo continues where it stopped.
"""

import dataclasses
import json
import pathlib
import signal
import statistics
import subprocess
import sys
import time

import click

from covgan.cli.common import emit
from covgan.errors import CovganError
from covgan.training.presets import PRESET_TRAINING


@dataclasses.dataclass(frozen=True)
class DemoSettings:
    data: str = "phantom"
    classifier_epochs: int = 20
    gan_epochs: int = PRESET_TRAINING["tiny"]["epochs"]  # the tiny preset's, levers and all
    repeats: int = 250
    pairs: int = 200
    explain_count: int = 8
    invert_steps: int = 200
    latency_calls: int = 30


def run_command(args):
    """Runs `covgan ARGS` in its own process (stderr shown as it goes): (exit code, stdout)."""
    result = subprocess.run([sys.executable, "-m", "covgan", *args], stdout=subprocess.PIPE,
                            text=True)
    return result.returncode, result.stdout


class Demo:
    def __init__(self, out, settings=DemoSettings(), echo=print):
        self.out = pathlib.Path(out)
        self.settings = settings
        self.echo = echo
        self.started = time.perf_counter()

    def elapsed(self):
        return time.perf_counter() - self.started

    def covgan(self, *args, stage):
        """Runs one covgan command, progress to our stderr; returns its stdout JSON."""
        command = [str(a) for a in args]
        self.echo(f"\n[{self.elapsed() / 60:4.1f} min] {stage}\n  $ covgan {' '.join(command)}")
        code, stdout = run_command(command)
        if code != 0:
            raise CovganError(f"demo stage '{stage}' failed (exit {code}); its error is above.")
        return json.loads(stdout)

    def stored(self, path, stage):
        """A finished stage's JSON from an earlier demo in the same OUT."""
        self.echo(f"\n[{self.elapsed() / 60:4.1f} min] {stage}: already done ({path})")
        return json.loads(pathlib.Path(path).read_text())

    def held_out_positives(self, data_dir):
        from covgan.data import layout

        records = layout.read_manifest(data_dir)
        chosen = layout.held_out_positives_with_masks(records, self.settings.explain_count)
        if not chosen:
            raise CovganError(f"{data_dir} has no held-out positives to explain.")
        return [str(pathlib.Path(data_dir) / r.path) for r in chosen]

    def run(self):
        s, out = self.settings, self.out
        out.mkdir(parents=True, exist_ok=True)
        clf, gan = out / "classifier", out / "gan"
        if (clf / "evaluation.json").is_file() and (clf / "classifier.keras").is_file():
            classifier = self.stored(clf / "evaluation.json", "classifier")
        else:
            classifier = self.covgan("classifier", "train", "--data", s.data, "--preset", "tiny",
                                     "--epochs", s.classifier_epochs, "--out", clf,
                                     stage="1/7 train the tiny classifier")
        if not (gan / "generator.keras").is_file():
            self.covgan("train", "--data", s.data, "--classifier", clf / "classifier.keras",
                        "--epochs", s.gan_epochs, "--out", gan,
                        stage="2/7 train the tiny GAN against it (Eq. 1)")
        evaluation = self.covgan("evaluate", "--run", gan, "--repeats", s.repeats, "--seeds", 1,
                                 "--pairs", s.pairs, stage="3/7 evaluate the GAN (quick)")
        localisation = self.covgan("localise", "--run", gan, "--count", s.explain_count,
                                   "--invert-steps", s.invert_steps,
                                   stage="4/7 localisation: every map against lesion masks")
        images = self.held_out_positives(localisation["data"])
        explained = self.covgan("explain", *images, "--run", gan, "--out", out / "explain",
                                "--invert-steps", s.invert_steps, "--overwrite",
                                stage=f"5/7 explain {len(images)} held-out positives")
        exported = self.covgan("export", "--run", gan, "--out", out / "savedmodels",
                               "--invert-steps", s.invert_steps,
                               stage="6/7 export SavedModels for TF Serving")
        serving = self.serve_and_query(exported, images[0])
        return self.summary(classifier, evaluation, localisation, explained, serving)

    def serve_and_query(self, exported, image):
        config = pathlib.Path(exported["model_config"])
        command = ["serve", "--model-config", str(config), "--port", "0", "--rest-port", "0"]
        self.echo(f"\n[{self.elapsed() / 60:4.1f} min] 7/7 serve, query, stop\n"
                  f"  $ covgan {' '.join(command)} &")
        server = subprocess.Popen([sys.executable, "-m", "covgan", *command],
                                  stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        try:
            line = server.stdout.readline()
            if not line:
                raise CovganError("covgan serve did not start (run it by hand to see why).")
            address = json.loads(line)["grpc"]
            self.covgan("query", "--server", address, "--image", image, "--out",
                        self.out / "query", "--overwrite", stage="  query the server")
            p50 = self.traverse_latency(address)
        finally:
            server.send_signal(signal.SIGTERM)
            code = server.wait(timeout=120)
        return {"grpc": address, "traverse_p50_ms": p50, "server_exit": code,
                "query": str(self.out / "query" / "report.html")}

    def traverse_latency(self, address):
        import numpy as np

        from covgan.serving.client import Client

        client = Client(address, timeout=120)
        try:
            shapes = client.signature_inputs("covgan_generator", "traverse")
            rng = np.random.default_rng(0)
            codes = {k: rng.standard_normal((1, v[-1])).astype("f4") for k, v in shapes.items()}
            client.predict("covgan_generator", "traverse", codes)  # warm
            times = []
            for _ in range(self.settings.latency_calls):
                started = time.perf_counter()
                client.predict("covgan_generator", "traverse", codes)
                times.append((time.perf_counter() - started) * 1000)
        finally:
            client.close()
        return round(statistics.median(times), 1)

    def summary(self, classifier, evaluation, localisation, explained, serving):
        methods = localisation["methods"]
        summary = {
            "classifier_accuracy": classifier["accuracy"],
            "classifier_auc": classifier["auc"],
            "class_consistency": evaluation["class_consistency"]["mean"],
            "monotonic_fraction": evaluation["monotonic_fraction"],
            # Every map localise scored, the one the report leads with named.
            "default_map": localisation["default_map"],
            "localisation": {m: {k: scores[k] for k in ("pointing_game", "relevance_mass")}
                             for m, scores in methods.items()},
            "explained": len(explained["images"]),
            "trusted": sum(row["trusted"] for row in explained["images"]),
            "serving_traverse_p50_ms": serving["traverse_p50_ms"],
            "server_exit_code": serving["server_exit"],
            "report": str((self.out / "explain" / "report.html").resolve()),
            "served_report": str((self.out / "query" / "report.html").resolve()),
            "minutes": round(self.elapsed() / 60, 2),
            "settings": dataclasses.asdict(self.settings),
        }
        (self.out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
        return summary


def table(summary):
    """The closing table, for people."""
    loc = summary["localisation"]
    shown = (summary["default_map"], "traversal", "gradcam")
    names = f"{shown[0].replace('_', ' ')} (the default map) / |difference| / Grad-CAM"

    def scores(key, digits):
        return " / ".join(f"{loc[m][key]:.{digits}f}" for m in shown)

    rows = [
        ("classifier accuracy / AUC (held out)",
         f"{summary['classifier_accuracy']:.3f} / {summary['classifier_auc']:.3f}"),
        ("GAN class consistency", f"{summary['class_consistency']:.3f}"),
        ("GAN monotone fraction", f"{summary['monotonic_fraction']:.3f}"),
        (f"pointing game: {names}", scores("pointing_game", 2)),
        (f"relevance mass: {names}", scores("relevance_mass", 3)),
        ("inversions trusted", f"{summary['trusted']} of {summary['explained']}"),
        ("serving: traverse p50 over gRPC", f"{summary['serving_traverse_p50_ms']:.1f} ms"),
        ("total time", f"{summary['minutes']:.1f} min"),
    ]
    width = max(len(name) for name, _ in rows)
    lines = [f"  {name:<{width}}  {value}" for name, value in rows]
    return "\n".join(["", "covgan demo: summary", *lines, "",
                      f"Open the report: {summary['report']}", ""])



DEFAULTS = DemoSettings()


@click.command(short_help="The whole job, end to end, on the built-in phantoms.")
@click.option("--out", default="runs/demo", show_default=True, type=click.Path(file_okay=False),
              help="Folder of the whole job; run again, it skips what is done.")
@click.option("--data", default=DEFAULTS.data, show_default=True,
              help="DATA for every stage (default: the built-in phantom set).")
@click.option("--classifier-epochs", type=click.IntRange(min=1),
              default=DEFAULTS.classifier_epochs, show_default=True,
              help="The classifier's maximum epochs.")
@click.option("--gan-epochs", type=click.IntRange(min=1), default=DEFAULTS.gan_epochs,
              show_default=True,
              help="The tiny preset's epochs (training levers on: docs, Results).")
@click.option("--explain-count", type=click.IntRange(min=1), default=DEFAULTS.explain_count,
              show_default=True, help="Held-out positives to explain and to score localisation on.")
@click.option("--invert-steps", type=click.IntRange(min=1), default=DEFAULTS.invert_steps,
              show_default=True, help="Inversion steps of localise, explain and export.")
@click.option("--repeats", type=click.IntRange(min=1), default=DEFAULTS.repeats,
              show_default=True, help="z1 draws for the quick class-consistency check.")
@click.option("--pairs", type=click.IntRange(min=1), default=DEFAULTS.pairs,
              show_default=True, help="(z1, z2) traversals for the quick monotonicity check.")
def demo(out, data, classifier_epochs, gan_epochs, explain_count, invert_steps, repeats, pairs):
    """The whole job, end to end, on the built-in phantoms (about 15-25 minutes on 2 CPU cores).

    Trains the tiny classifier, trains the tiny GAN against it, evaluates it,
    scores the difference map against Grad-CAM on lesion masks, explains held-out
    positives into OUT/explain/report.html, exports SavedModels, starts `covgan
    serve` on a free loopback port, queries it, and stops it. Every stage is the
    command you would type, printed before it runs; a second run skips the
    training already done. Ends with a summary table (stderr) and JSON (stdout,
    and OUT/summary.json).

    \b
    Example:
      covgan demo --out runs/demo
    """
    settings = DemoSettings(data=data, classifier_epochs=classifier_epochs,
                            gan_epochs=gan_epochs, explain_count=explain_count,
                            invert_steps=invert_steps, repeats=repeats, pairs=pairs)
    summary = Demo(out, settings, echo=lambda text: click.echo(text, err=True)).run()
    click.echo(table(summary), err=True)
    emit(summary)
