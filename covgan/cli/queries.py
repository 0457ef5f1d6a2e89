"""What `covgan query` does with a server's answers: the files the local commands write."""

import numpy as np

from covgan.cli.explain import load_images
from covgan.explain.traverse import crossing_step
from covgan.io import atomic_directory, check_new_directory, write_json


def query_images(client, model, version, signature, images, out, overwrite, batch=8):
    """explain (or explain_untuned): a call per `batch` images; traverse: invert, then
    traverse the codes the server found."""
    from covgan.output.writers import write_explanation, write_traversals

    check_new_directory(out, overwrite=overwrite)
    pixels, warnings = load_images(images)
    where = {"server": client.server, "model": model, "model version": version or "latest"}
    if signature.startswith("explain"):
        # The explain signature's outputs carry the names the library's explain() returns.
        parts = [client.predict(model, signature, {"images": pixels[i : i + batch]}, version)
                 for i in range(0, len(pixels), batch)]
        result = {key: np.concatenate([part[key] for part in parts]) for key in parts[0]}
        where["signature"] = signature
        steps = result["traversal"].shape[1] - 1
        with atomic_directory(out, overwrite=overwrite) as tmp:
            payload = write_explanation(tmp, out, images, pixels, result, warnings, steps=steps,
                                        settings=where)
        return payload
    inverted = client.predict(model, "invert", {"images": pixels}, version)
    walked = client.predict(model, "traverse", {"z1": inverted["z1"], "z2": inverted["z2"]},
                            version)
    return _write_walks(out, overwrite, list(images), walked, where, write_traversals)


def query_codes(client, model, version, signature, seed, count, out, overwrite):
    """traverse or generate on codes drawn from `seed`."""
    from covgan.output.writers import write_traversals

    check_new_directory(out, overwrite=overwrite)
    where = {"server": client.server, "model": model, "model version": version or "latest",
             "seed": seed}
    # The sizes of z1 and z2 come from the served signature itself.
    sizes = client.signature_inputs(model, signature, version)
    rng = np.random.default_rng(seed)
    codes = {name: rng.standard_normal((count, shape[-1])).astype(np.float32)
             for name, shape in sizes.items()}
    outputs = client.predict(model, signature, codes, version)
    sources = [f"seed{seed}_{i}" for i in range(count)]
    if signature == "traverse":
        return _write_walks(out, overwrite, sources, outputs, where, write_traversals)
    from covgan.data.layout import write_png

    with atomic_directory(out, overwrite=overwrite) as tmp:
        for source, image in zip(sources, outputs["images"]):
            write_png(tmp / f"{source}.png", image[..., 0])
        np.savez(tmp / "latents.npz", **codes)
        payload = {"images": [{"source": s, "p_positive": float(p)}
                              for s, p in zip(sources, outputs["probabilities"])], **where}
        write_json(tmp / "generate.json", payload)
    return payload


def _write_walks(out, overwrite, sources, walked, where, write_traversals):
    frames, probabilities = walked["images"], walked["probabilities"]
    steps = frames.shape[1] - 1
    with atomic_directory(out, overwrite=overwrite) as tmp:
        rows = write_traversals(tmp, sources, frames, probabilities, crossing_step(probabilities),
                                np.abs(walked["difference"]), steps=steps)
        payload = {"images": rows, "steps": steps, "image_step": steps, **where}
        write_json(tmp / "traverse.json", payload)
    return payload
