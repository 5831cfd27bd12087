"""Paint a label map and watch the model synthesize it, on a local web page (gradio).

python demo.py --name NAME [--which_epoch latest] [--checkpoints_dir DIR] [--host 127.0.0.1] [--port 7860]
    [--precision fp32|bf16|fp16]

The experiment's saved options are read, so the model is rebuilt as trained. The page shows the dataset's
classes (names and the HTML pages' label colours), a canvas that starts from the first test sample (or all
background when the dataset cannot be read), an upload for a label map (ids PNG or colour PNG), the
synthesized image and, for generators that have them, their extra images (SC-GAN: the SVG's image) and the
semantic vectors V_t of one chosen scale, one heat map per component. With --use_vae (or OASIS's 3-D noise,
--oasis_noise_nc) a "new style" button draws another code z (and noise). Nothing is fetched from the internet.
Needs gradio: pip install -r requirements-demo.txt. The logic (colours -> ids -> images) lives in
inference/painting.py, and the generator runs through inference.Synthesizer (spectral norms folded); nothing else in
the project imports gradio.
"""
import html
import os
import sys

# Offline: no usage reports, no version check (gradio reads these when it is imported).
os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"

try:
    import gradio as gr
except ImportError:
    gr = None

import numpy as np
import torch

from checkpointing.storage import CheckpointError
from inference import Synthesizer, painting
from options.demo_options import DemoOptions
from options.test_options import say_precision_cost

CANVAS_MIN_SIDE = 256     # the canvas shows small models enlarged to at least this many pixels
MAX_RADIO_CLASSES = 24    # more classes are offered in a dropdown
ELEM = {"canvas": "canvas", "class": "class-picker", "legend": "palette", "upload": "label-upload",
        "image": "synthesized-image"}
LEGEND_CSS = """
#palette .swatches {display: flex; flex-wrap: wrap; gap: 4px 12px;}
#palette .entry {display: inline-flex; align-items: center; gap: 6px;}
#palette .chip {width: 14px; height: 14px; border: 1px solid #888; display: inline-block;}
.pixelated img {image-rendering: pixelated; width: 100%; height: 100%; object-fit: contain;}
"""


class DemoPage:
    """The page's state and callbacks around one painting.DemoModel; `build()` returns the gradio Blocks."""

    def __init__(self, synthesizer, names, initial_ids, title):
        self.synth, self.names, self.title = synthesizer, list(names), title
        self.palette = synthesizer.palette
        self.initial_ids = initial_ids
        h, w = synthesizer.size
        self.zoom = max(1, -(-CANVAS_MIN_SIDE // max(h, w)))   # canvas pixels per model pixel
        self.background_colour = self.palette[0]

    # -------------------------------------------------------------------------------------------------
    # callbacks (also reached through gradio's API: /paint, /upload, /new_style, /show_vectors)
    def editor_value(self, ids):
        """Class ids -> the editor's value: a background of class 0 (what the eraser uncovers) and one layer
        holding the layout in colour, both enlarged to the canvas."""
        layout = painting.upscale(painting.ids_to_colours(ids, self.palette), self.zoom)
        background = np.broadcast_to(self.background_colour, layout.shape).copy()
        return {"background": background, "layers": [layout], "composite": layout}

    def ids_from_editor(self, value):
        if not value:
            raise gr.Error("the canvas is empty: paint a layout or upload a label map")
        try:
            picture = painting.editor_composite(value.get("background"), value.get("layers"),
                                                  value.get("composite"), self.background_colour)
        except ValueError as e:
            raise gr.Error(str(e))
        ids = painting.colours_to_ids(picture, self.palette)
        return painting.resize_ids(ids, self.synth.size)

    def synthesize(self, ids, seed, stream, scale):
        synthesis = self.synth.run(ids, seed)
        extras = [synthesis.extra_images.get(name) for name in self.synth.extra_image_names]
        return [synthesis.image, *extras, self.vector_picture(synthesis, stream, scale), synthesis]

    def paint(self, value, seed, stream, scale):
        return self.synthesize(self.ids_from_editor(value), seed, stream, scale)

    def start(self, seed, stream, scale):
        return self.synthesize(self.initial_ids, seed, stream, scale)

    def upload(self, path):
        if path is None:
            return gr.update()
        try:
            ids = painting.read_label_map(path, self.palette, self.synth.size,
                                            self.synth.opt.contain_dontcare_label)
        except ValueError as e:   # DatasetError included: it names the file and the bad value
            raise gr.Error(str(e))
        return self.editor_value(ids)

    def new_style(self, value, seed, stream, scale):
        seed = int(seed) + 1
        return [seed, *self.paint(value, seed, stream, scale)]

    def vector_picture(self, synthesis, stream, scale):
        if synthesis is None or not synthesis.vectors or stream not in painting.VECTOR_STREAMS:
            return None
        return self.synth.vector_picture(synthesis, painting.VECTOR_STREAMS[stream], int(scale))

    def pick_class(self, class_id):
        return gr.update(brush=self.brush(int(class_id)))

    # -------------------------------------------------------------------------------------------------
    def brush(self, class_id):
        colours = [painting.hex_colour(c) for c in self.palette]
        return gr.Brush(colors=colours, default_color=colours[class_id], color_mode="fixed",
                        default_size=max(2, 2 * self.zoom))

    def legend_html(self):
        entries = "".join(f'<span class="entry"><span class="chip" style="background:'
                          f'{painting.hex_colour(c)}"></span>{k}: {html.escape(name)}</span>'
                          for k, (name, c) in enumerate(zip(self.names, self.palette)))
        return f'<div class="swatches">{entries}</div>'

    def build(self):
        synth = self.synth
        first = self.start(0, None, None)[-1]
        streams = [name for name, key in painting.VECTOR_STREAMS.items() if key in first.vectors]
        scales = []
        if streams:
            maps = first.vectors[painting.VECTOR_STREAMS[streams[0]]]
            scales = [(f"V_{t} ({v.shape[1]}x{v.shape[2]})", t) for t, v in enumerate(maps, 1)]
        h, w = synth.size
        with gr.Blocks(title=f"{self.title}: paint a layout") as app:
            gr.Markdown(f"### {html.escape(self.title)}\nPick a class, paint on the canvas (the eraser uncovers "
                        f"the background class, {html.escape(self.names[0])}), or upload a label map. The "
                        f"model synthesizes {w}x{h} images.")
            seed = gr.State(0)
            synthesis = gr.State(None)
            with gr.Row():
                with gr.Column(scale=1, min_width=220):
                    picker = (gr.Radio if len(self.names) <= MAX_RADIO_CLASSES else gr.Dropdown)(
                        choices=[(name, k) for k, name in enumerate(self.names)], value=0, label="class to paint",
                        elem_id=ELEM["class"])
                    gr.HTML(self.legend_html(), elem_id=ELEM["legend"])
                    upload = gr.File(label="upload a label map (ids PNG or colour PNG)", file_types=["image"],
                                     type="filepath", elem_id=ELEM["upload"])
                    style = gr.Button("new style", visible=synth.uses_style)
                with gr.Column(scale=2):
                    editor = gr.ImageEditor(
                        value=self.editor_value(self.initial_ids), image_mode="RGBA", type="numpy",
                        sources=(), transforms=(), format="png", brush=self.brush(0), eraser=gr.Eraser(),
                        layers=False, canvas_size=(w * self.zoom, h * self.zoom), fixed_canvas=True,
                        label="layout", elem_id=ELEM["canvas"])
                with gr.Column(scale=2):
                    shown = dict(format="png", height=CANVAS_MIN_SIDE, elem_classes="pixelated")
                    with gr.Row():
                        outputs = [gr.Image(label="synthesized image", elem_id=ELEM["image"], **shown)]
                        outputs += [gr.Image(label=name, **shown) for name in synth.extra_image_names]
                    stream = gr.Radio(streams, value=streams[0] if streams else None, label="semantic vectors",
                                      visible=bool(streams))
                    scale = gr.Dropdown(scales, value=len(scales) if scales else None, label="scale",
                                        visible=bool(streams))
                    vectors = gr.Image(label="components of V, left to right (dark = low, light = high)",
                                       format="png", visible=bool(streams), elem_classes="pixelated")
            outputs += [vectors, synthesis]
            inputs = [seed, stream, scale]
            app.load(self.start, inputs, outputs, api_name="start")
            editor.change(self.paint, [editor, *inputs], outputs, api_name="paint", trigger_mode="always_last")
            upload.upload(self.upload, [upload], [editor], api_name="upload")
            style.click(self.new_style, [editor, *inputs], [seed, *outputs], api_name="new_style")
            picker.change(self.pick_class, [picker], [editor], api_name=False)
            for control in (stream, scale):
                control.change(self.vector_picture, [synthesis, stream, scale], [vectors], api_name="show_vectors")
        return app


def load_page(opt):
    """Options -> DemoPage for the experiment (its generator on the options' device, spectral norms folded)."""
    painting.check_paintable(opt)
    device = torch.device(f"cuda:{opt.gpu_ids[0]}") if opt.gpu_ids else torch.device("cpu")
    api = Synthesizer.from_options(opt, device=device, precision=opt.precision,
                                      layout_path=opt.layout_conv)
    if api.uses_ema:
        print(f"using the EMA generator {api.generator_file} (--no_ema for netG)")
    synthesizer = painting.DemoModel(api)
    initial_ids, dataset_names = painting.initial_layout(opt, synthesizer.size)
    names = painting.class_names(dataset_names, opt.label_nc, opt.contain_dontcare_label)
    title = f"{opt.name} ({opt.netG}, epoch {opt.which_epoch})"
    return DemoPage(synthesizer, names, initial_ids, title)


def launch(app, host, port, block=True):
    """Serve the page: no share link, no server-side rendering (needs Node), CSS kept in the page. gradio's own
    start-up lines are replaced by one that says where the page is and who can open it (gradio's would advise
    share=True, a public link through gradio's servers, which this offline demo does not make)."""
    app.launch(server_name=host, server_port=port, share=False, ssr_mode=False, inbrowser=False, quiet=True,
               prevent_thread_lock=True, css=LEGEND_CSS, show_error=True)
    if block:
        reach = ("only this machine can open it; --host 0.0.0.0 serves it to your network"
                 if host in ("127.0.0.1", "localhost", "::1") else f"served on {host}, so other machines can open it")
        print(f"* Running on local URL:  {app.local_url.rstrip('/')} ({reach}; no public link is made)", flush=True)
        app.block_thread()
    return app


def main(argv=None):
    if gr is None:
        sys.exit("demo.py needs gradio: pip install -r requirements-demo.txt")
    opt = DemoOptions().parse(argv)
    say_precision_cost(opt)
    torch.manual_seed(opt.seed)
    try:
        page = load_page(opt)
    except (FileNotFoundError, ValueError, CheckpointError) as e:
        sys.exit(f"error: {e}")
    try:
        launch(page.build(), opt.host, opt.port)
    except OSError as e:   # gradio: "Cannot find empty port in range: P-P. ..."
        sys.exit(f"error: cannot serve the page on {opt.host}:{opt.port} ({str(e).split('.')[0]}): choose another "
                 f"--port")


if __name__ == "__main__":
    main()
