"""A self-contained HTML report (pictures embedded) that a clinician can read without code.

Pictures are embedded at their native size, each in the smallest of PNG, JPEG and (for
gray ones) WebP, and the browser enlarges them; the traversal's animation moves
the embedded strip of steps rather than repeating its frames in a GIF. 32 images make a
report of about 6 MB that can be mailed and opened on a laptop.
"""

import base64
import html

import cv2
import numpy as np

JPEG_QUALITY = 90
WEBP_QUALITY = 88
STEP_MILLISECONDS = 250

_STYLE = """
body { font-family: system-ui, sans-serif; max-width: 1100px; margin: 2em auto; color: #222; }
h1 { font-size: 1.5em; } h2 { font-size: 1.15em; margin-top: 2em; border-top: 1px solid #ccc;
padding-top: 1em; } img { max-width: 100%; } table { border-collapse: collapse; }
td, th { padding: 3px 10px; border-bottom: 1px solid #eee; text-align: left; }
.trusted { background: #e8f5e9; border-left: 5px solid #2e7d32; padding: 8px 12px; }
.untrusted { background: #fdecea; border-left: 5px solid #c62828; padding: 8px 12px; }
.warning { background: #fff8e1; border-left: 5px solid #f9a825; padding: 6px 12px; }
.guide { background: #f5f5f5; padding: 10px 16px; font-size: 0.95em; }
.pair { display: flex; gap: 24px; align-items: flex-start; flex-wrap: wrap; }
.panels { display: flex; gap: 6px; align-items: flex-start; }
.panels figure { margin: 0; flex: 1 1 0; max-width: 256px; text-align: center; }
.panels img { width: 100%; display: block; }
figcaption { font-size: 0.85em; white-space: pre-line; }
.strip { width: 100%; background-size: 100% 100%; }
.walk { background-repeat: no-repeat; image-rendering: pixelated;
animation-name: walk; animation-iteration-count: infinite; animation-direction: alternate; }
@keyframes walk { from { background-position: 0% 0; } to { background-position: 100% 0; } }
"""

_GUIDE = """
<div class="guide"><b>How to read this report.</b> A generative model (GAN) was trained to
draw radiographs that the classifier labels positive or negative. For each radiograph it
finds the closest drawing it can make (the <i>reconstruction</i>), then switches its disease
code off to draw the <i>negative counterpart</i>: the same lungs as the model imagines them
without disease. Walking from the counterpart to the reconstruction (the animation and the
curve) shows what has to appear before the classifier calls the image positive. The
<i>|difference|</i> panel marks every pixel that changed along that walk; <i>Grad-CAM</i>
marks where the classifier's last convolution layer looked. If the difference map lights up
outside the lungs (text, markers, borders, devices), the classifier may rely on a shortcut.
Where a row of maps follows Figure 2, its first (latent gradients) weights the walk's change
by how strongly the classifier's score responds to it along the walk; on phantom radiographs
with known lesions it pointed at them at least as often as the plain |difference| and put
more of its weight on them. The last panel of
Figure 2 takes the walk's change out of the real image; if the classifier still calls that
positive, the evidence lies in what the GAN could not reproduce, and the explanation is
marked untrusted. An explanation is only as good as the reconstruction: untrusted ones are
marked in red.</div>
"""


def data_uri(path, mime):
    """The file's bytes as a data: URI, so the report is one file."""
    with open(path, "rb") as f:
        return f"data:{mime};base64," + base64.b64encode(f.read()).decode("ascii")


def image_uri(image: np.ndarray) -> str:
    """An 8-bit gray or BGR picture as a data: URI in the smallest of its candidate encodings.

    PNG (lossless) always; JPEG at JPEG_QUALITY with full colour resolution (4:4:4, so the
    maps' colours keep their edges); for gray pictures also WebP at WEBP_QUALITY, which is
    about 40% smaller than JPEG there (lossy WebP halves colour resolution, so only gray).
    """
    candidates = [
        ("image/png", ".png", [cv2.IMWRITE_PNG_COMPRESSION, 9]),
        ("image/jpeg", ".jpg", [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY,
                                cv2.IMWRITE_JPEG_SAMPLING_FACTOR,
                                cv2.IMWRITE_JPEG_SAMPLING_FACTOR_444]),
    ]
    if image.ndim == 2:
        candidates.append(("image/webp", ".webp", [cv2.IMWRITE_WEBP_QUALITY, WEBP_QUALITY]))
    encoded = []
    for mime, suffix, params in candidates:
        ok, data = cv2.imencode(suffix, image, params)
        if not ok:
            raise ValueError(f"cannot encode a picture of shape {image.shape} as {suffix}")
        encoded.append((data.size, mime, data))
    size, mime, data = min(encoded, key=lambda e: e[0])
    return f"data:{mime};base64," + base64.b64encode(data.tobytes()).decode("ascii")


def panels_html(tiles, captions, label):
    """A row of native-size pictures, enlarged by the browser, each with its caption."""
    figures = "".join(
        f"<figure><img alt='{html.escape(label)}: {html.escape(caption)}' "
        f"src='{image_uri(tile)}'><figcaption>{html.escape(caption)}</figcaption></figure>"
        for tile, caption in zip(tiles, captions)
    )
    return f"<div class='panels'>{figures}</div>"


def walk_html(index, strip, steps):
    """The traversal strip shown whole and, beside the plot, animated there and back.

    The strip's data appears once, in a CSS class both elements use; the animation shows one
    frame at a time (2x, pixelated, with the white gap that follows it) by moving the strip
    in `steps` jumps.
    """
    height, width = strip.shape
    pitch = width // steps
    css = f".film{index} {{ background-image: url('{image_uri(strip)}'); }}"
    whole = (f"<div class='strip film{index}' role='img' aria-label='every step of the walk' "
             f"style='aspect-ratio: {width} / {height}'></div>")
    animated = (
        f"<div class='walk film{index}' role='img' aria-label='traversal animation' "
        f"style='width: {2 * pitch}px; height: {2 * height}px; "
        f"background-size: {2 * width}px {2 * height}px; "
        f"animation-duration: {steps * STEP_MILLISECONDS}ms; "
        f"animation-timing-function: steps({steps}, jump-none)'></div>"
    )
    return css, whole, animated


def trust_banner(entry, ssim_threshold, probability_gap):
    ssim = entry["ssim"]
    gap = abs(entry["p_reconstruction"] - entry["p_image"])
    if entry["trusted"]:
        return (f'<p class="trusted"><b>Trusted.</b> The GAN reproduces this radiograph closely '
                f"(SSIM {ssim:.2f}), the classifier sees the reproduction as it sees the "
                f"image (p differs by {gap:.2f}), and the evidence is in the reproduction "
                f"(the image without the walk's change reads p = "
                f"{entry.get('p_add_back', 0.0):.2f}).</p>")
    reasons = []
    if ssim < ssim_threshold:
        reasons.append(
            f"the reconstruction looks different (SSIM {ssim:.2f} &lt; {ssim_threshold})"
        )
    if gap > probability_gap:
        reasons.append(
            f"the classifier sees it differently (p differs by {gap:.2f} &gt; {probability_gap})"
        )
    if entry.get("p_add_back", 0.0) >= 0.5:
        reasons.append(
            "the evidence is not in the reconstruction: what the GAN failed to reproduce, put "
            f"back on the negative counterpart, reads positive (p = {entry['p_add_back']:.2f})"
        )
    return (
        f'<p class="untrusted"><b>NOT trusted:</b> {" and ".join(reasons)}. The panels '
        "below explain the GAN's nearest look-alike, not this radiograph; do not read "
        "them as an explanation of this image.</p>"
    )


def called_negative_note(entry):
    """For a film the classifier calls negative: the walk shows what would make it read
    positive, which is not why it reads positive (it does not)."""
    return ('<p class="warning"><b>The classifier calls this film negative</b> (p = '
            f"{entry['p_image']:.2f}). The walk below shows what the GAN adds to make a film "
            "like it read positive, not the evidence for a finding the classifier does not "
            "see; whatever its label, do not read the maps as why the classifier called it "
            "positive. Why it missed a finding is another question.</p>")


def tuning_note(entry, tuning=None):
    """What pivotal tuning changed: the pictures come from a copy of G fitted to this image;
    `tuning` (the settings' dict, where known) says what became of the counterpart."""
    before = "trusted" if entry["trusted_untuned"] else "not trusted"
    tuning = tuning or {}
    if tuning.get("counterpart_fit"):
        counterpart = ("fitted to this radiograph too, except where the inversion missed, and "
                       "held negative by the classifier")
    elif tuning.get("layers") == "branch":
        counterpart = "exactly the untuned GAN's (only the branch the walk turns up was tuned)"
    else:
        counterpart = "held to the untuned GAN's"
    return ("<p>Pivotal tuning: the reconstruction, the walk and its maps come from a copy of "
            f"the GAN fine-tuned to this radiograph, its negative counterpart {counterpart}. "
            f"Reconstruction SSIM {entry['ssim_untuned']:.2f} before tuning, "
            f"{entry['ssim']:.2f} after; the inversion alone was {before}.</p>")


def write_report(path, entries, *, title, settings, ssim_threshold, probability_gap):
    """Writes report.html.

    Args:
        path: output file.
        entries: one dict per image: source, p_image, p_reconstruction, p_counterpart, mse,
            ssim, trusted, crossing_step, probabilities, warnings; the pictures
            figure_panels and, for local explanations, map_panels ((tiles, captions) from
            `covgan.output.render`), strip_image (`render.traversal_strip`); the plot's path.
        title: page title.
        settings: dict shown at the end (run, inversion and traversal settings).
    """
    parts = [
        f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
        _GUIDE,
        "<h2>Summary</h2><table>",
        "<tr><th>image</th><th>p(positive)</th><th>counterpart p</th>"
        "<th>decision crosses at step</th><th>SSIM</th><th>trusted</th></tr>",
    ]
    for entry in entries:
        crossing = entry["crossing_step"] if entry["crossing_step"] >= 0 else "never"
        parts.append(
            f"<tr><td>{html.escape(entry['source'])}</td><td>{entry['p_image']:.2f}</td>"
            f"<td>{entry['p_counterpart']:.2f}</td><td>{crossing}</td>"
            f"<td>{entry['ssim']:.2f}</td>"
            f"<td>{'yes' if entry['trusted'] else '<b>no</b>'}</td></tr>"
        )
    parts.append("</table>")
    styles = []
    for index, entry in enumerate(entries):
        verdict = "positive" if entry["p_image"] >= 0.5 else "negative"
        parts.append(
            f"<h2>{html.escape(entry['source'])}: classifier says {verdict} "
            f"(p = {entry['p_image']:.2f})</h2>"
        )
        parts.extend(f'<p class="warning">{html.escape(w)}</p>' for w in entry["warnings"])
        if verdict == "negative":
            parts.append(called_negative_note(entry))
        parts.append(trust_banner(entry, ssim_threshold, probability_gap))
        if "ssim_untuned" in entry:
            parts.append(tuning_note(entry, settings.get("tuning")))
        parts.append(panels_html(*entry["figure_panels"], "Figure 2"))
        if entry.get("map_panels"):
            parts.append("<p>Every map, over the image (brighter: more evidence for "
                         "positive); the first is covgan's default map:</p>")
            parts.append(panels_html(*entry["map_panels"], "explanation map"))
        css, whole, animated = walk_html(index, entry["strip_image"],
                                         len(entry["probabilities"]))
        styles.append(css)
        parts.append(
            f"<div class='pair'>{animated}"
            f"<img alt='p(positive) by step' src='{data_uri(entry['plot'], 'image/png')}'>"
            "</div>"
        )
        parts.append(f"<p>Every step of the walk:</p>{whole}")
        parts.append(
            "<table>"
            f"<tr><td>p(positive) of the radiograph</td><td>{entry['p_image']:.3f}</td></tr>"
            "<tr><td>p(positive) of the reconstruction</td>"
            f"<td>{entry['p_reconstruction']:.3f}</td></tr>"
            "<tr><td>p(positive) of the negative counterpart</td>"
            f"<td>{entry['p_counterpart']:.3f}</td></tr>"
            "<tr><td>reconstruction SSIM / MSE</td>"
            f"<td>{entry['ssim']:.3f} / {entry['mse']:.4f}</td></tr>"
            "</table>"
        )
    rows = "".join(
        f"<tr><td>{html.escape(str(k))}</td><td>{html.escape(str(v))}</td></tr>"
        for k, v in settings.items()
    )
    parts.append(f"<h2>Settings</h2><table>{rows}</table>")
    # The strips' pictures, each once, for the elements above that show them.
    parts.append(f"<style>{chr(10).join(styles)}</style></body></html>")
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(parts))
