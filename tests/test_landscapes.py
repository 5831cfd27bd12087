"""data/landscapes.py and --dataset_mode landscapes: the COCO-Stuff table, determinism, disjoint phases, the
long tail of classes, instance maps, perspective and occlusion, the appearance groups, the loader (and its DDP
shards), the label palette on the pages and in the demo, the preview tool, and one epoch of every generator."""
import contextlib
import io

import numpy as np
import pytest
import torch
from PIL import Image

import data
import train as train_script
from data import landscapes as L
from inference import painting
from util import util

# COCO-Stuff's 182 classes as SPADE's coco mode reads their ids: COCO-Stuff's labels.txt (github.com/nightrome/
# cocostuff, labels.md) id minus one, as in its Caffe-compatible stuffthingmaps (255 = unlabeled).
COCO_STUFF = (
    "person", "bicycle", "car", "motorcycle", "airplane", "bus", "train", "truck", "boat", "traffic light",
    "fire hydrant", "street sign", "stop sign", "parking meter", "bench", "bird", "cat", "dog", "horse", "sheep",
    "cow", "elephant", "bear", "zebra", "giraffe", "hat", "backpack", "umbrella", "shoe", "eye glasses", "handbag",
    "tie", "suitcase", "frisbee", "skis", "snowboard", "sports ball", "kite", "baseball bat", "baseball glove",
    "skateboard", "surfboard", "tennis racket", "bottle", "plate", "wine glass", "cup", "fork", "knife", "spoon",
    "bowl", "banana", "apple", "sandwich", "orange", "broccoli", "carrot", "hot dog", "pizza", "donut", "cake",
    "chair", "couch", "potted plant", "bed", "mirror", "dining table", "window", "desk", "toilet", "door", "tv",
    "laptop", "mouse", "remote", "keyboard", "cell phone", "microwave", "oven", "toaster", "sink", "refrigerator",
    "blender", "book", "clock", "vase", "scissors", "teddy bear", "hair drier", "toothbrush", "hair brush",
    "banner", "blanket", "branch", "bridge", "building-other", "bush", "cabinet", "cage", "cardboard", "carpet",
    "ceiling-other", "ceiling-tile", "cloth", "clothes", "clouds", "counter", "cupboard", "curtain", "desk-stuff",
    "dirt", "door-stuff", "fence", "floor-marble", "floor-other", "floor-stone", "floor-tile", "floor-wood",
    "flower", "fog", "food-other", "fruit", "furniture-other", "grass", "gravel", "ground-other", "hill", "house",
    "leaves", "light", "mat", "metal", "mirror-stuff", "moss", "mountain", "mud", "napkin", "net", "paper",
    "pavement", "pillow", "plant-other", "plastic", "platform", "playingfield", "railing", "railroad", "river",
    "road", "rock", "roof", "rug", "salad", "sand", "sea", "shelf", "sky-other", "skyscraper", "snow",
    "solid-other", "stairs", "stone", "straw", "structural-other", "table", "tent", "textile-other", "towel", "tree",
    "vegetable", "wall-brick", "wall-concrete", "wall-other", "wall-panel", "wall-stone", "wall-tile", "wall-wood",
    "water-other", "waterdrops", "window-blind", "window-other", "wood",
)

SMALL = ["--load_size", "32", "--crop_size", "32"]
TINY = ["--dataset_mode", "landscapes", "--gpu_ids", "-1", "--ngf", "8", "--ndf", "8", "--batchSize", "2",
        "--num_synthetic", "2", "--niter", "1", "--niter_decay", "0", "--display_freq", "1", "--print_freq", "1"]


# ---------------------------------------------------------------------------------------------------------
# the classes and their COCO-Stuff ids

def test_coco_stuff_reference_has_182_classes():
    assert len(COCO_STUFF) == 182 and len(set(COCO_STUFF)) == 182
    assert (COCO_STUFF[0], COCO_STUFF[91], COCO_STUFF[156], COCO_STUFF[181]) == ("person", "banner", "sky-other",
                                                                                 "wood")


def test_every_class_maps_to_its_coco_stuff_class():
    assert 30 <= L.NUM_CLASSES <= 40 and len(set(L.CLASS_NAMES)) == L.NUM_CLASSES
    coco_ids = [coco_id for _, coco_id, _ in L.CLASSES]
    assert len(set(coco_ids)) == L.NUM_CLASSES                 # no two classes merge in COCO-Stuff
    for name, coco_id, coco_name in L.CLASSES:
        assert 0 <= coco_id < 182 and COCO_STUFF[coco_id] == coco_name, name
    assert L.CLASS_NAMES[L.SKY] == "sky" and L.CLASS_NAMES[L.STRAW] == "straw"


def test_to_coco_stuff_converts_a_label_map():
    label = L.draw(7, size=32)[0]
    coco = L.to_coco_stuff(label)
    assert coco.shape == label.shape and coco.dtype == np.uint8
    for k in np.unique(label):
        assert COCO_STUFF[int(coco[label == k][0])] == L.CLASSES[k][2]
    with pytest.raises(ValueError, match="0..34"):
        L.to_coco_stuff(np.array([[0, 35]]))


# ---------------------------------------------------------------------------------------------------------
# drawing

@pytest.mark.parametrize("size", [32, 64, 128, 256])
def test_draw_shapes_and_types(size):
    label, instance, image = L.draw(3, size=size)
    assert label.shape == instance.shape == (size, size) and image.shape == (size, size, 3)
    assert label.dtype == np.uint8 and instance.dtype == np.int32 and image.dtype == np.uint8
    assert label.max() < L.NUM_CLASSES


def test_deterministic_by_seed_index_and_phase():
    first = L.draw(5, seed=1)
    assert all(np.array_equal(a, b) for a, b in zip(first, L.draw(5, seed=1)))
    for other in (L.draw(6, seed=1), L.draw(5, seed=2), L.draw(5, seed=1, phase="test")):
        assert not np.array_equal(first[2], other[2]) and not np.array_equal(first[0], other[0])


def test_train_and_test_phases_hold_different_scenes():
    def layouts(phase):
        return {L.draw(i, size=32, phase=phase)[0].tobytes() for i in range(150)}
    train, test = layouts("train"), layouts("test")
    assert len(train) == len(test) == 150 and not train & test


def test_every_class_appears_and_the_tail_is_long():
    images = np.zeros(L.NUM_CLASSES)
    for i in range(200):
        images += np.bincount(L.draw(i)[0].ravel(), minlength=L.NUM_CLASSES) > 0
    assert images.min() > 0, [L.CLASS_NAMES[k] for k in np.flatnonzero(images == 0)]
    share = images / 200
    assert share[L.SKY] == 1.0
    assert (share < 0.1).sum() >= 8                           # a tail of rare classes (tent, horse, fog, ...)


def test_a_larger_size_draws_the_same_scene():
    """Pixel i of a 64-wide map and pixel 3i + 1 of a 192-wide one have the same centre: the scenes agree there,
    up to the far objects that are widened to stay visible at 64."""
    agree = []
    for i in range(20):
        small, big = L.draw(i, size=64)[0], L.draw(i, size=192)[0]
        agree.append((small == big[1::3, 1::3]).mean())
    assert np.mean(agree) > 0.99 and min(agree) > 0.98       # measured: 0.999 and 0.992


def test_instances_are_consistent_with_labels():
    several = 0
    for i in range(60):
        label, instance, _ = L.draw(i)
        assert np.array_equal(L.instance_class(instance), label)
        objects = np.unique(instance[instance >= L.INSTANCE_BASE])
        several += np.bincount(objects // L.INSTANCE_BASE, minlength=L.NUM_CLASSES).max() >= 2
    assert several >= 40        # several trees, sheep, clouds in one image (measured: 58 of 60 images)


def test_objects_are_larger_near_the_viewer():
    bottoms, heights = [], []
    for i in range(40):
        label, instance, _ = L.draw(i, size=128)
        for k in np.unique(instance[(label == L.TREE) & (instance >= L.INSTANCE_BASE)]):
            rows = np.flatnonzero((instance == k).any(1))
            if rows[-1] < 127:                                   # not cut by the image's bottom edge
                bottoms.append(rows[-1])
                heights.append(rows[-1] - rows[0] + 1)
    assert len(bottoms) > 50
    assert np.corrcoef(bottoms, heights)[0, 1] > 0.7           # measured: 0.90


def test_objects_are_drawn_far_first():
    for i in range(30):
        things = [t for t in L.Scene(L.sample_rng(i)).things if t.kind != "bird"]
        assert [t.y for t in things] == sorted(t.y for t in things)


# ---------------------------------------------------------------------------------------------------------
# appearance: the groups the semantic vectors should find

def test_the_appearance_groups_name_classes():
    for kind, names in L.APPEARANCE_GROUPS.values():
        assert kind in ("shared", "related") and set(names) <= set(L.CLASS_NAMES)
    assert ("sea", "river") in L.LandscapesDataset.twin_classes
    assert ("grass", "tree") in L.LandscapesDataset.twin_classes
    assert ("rock", "mountain") in L.LandscapesDataset.twin_classes


def test_water_shares_one_model_and_the_related_groups_move_together():
    looks = [L.draw_looks(np.random.default_rng(i)) for i in range(300)]
    assert all(k[L.SEA] is k[L.RIVER] is k[L.LAKE] for k in looks)

    def correlation(a, b):   # of the classes' base colours across images, averaged over R, G, B
        x, y = (np.array([k[c].c1 for k in looks]) for c in (a, b))
        return np.mean([np.corrcoef(x[:, ch], y[:, ch])[0, 1] for ch in range(3)])
    for a, b in ((L.GRASS, L.TREE), (L.GRASS, L.BUSH), (L.BUSH, L.TREE), (L.ROCK, L.MOUNTAIN)):
        assert correlation(a, b) > 0.7, (L.CLASS_NAMES[a], L.CLASS_NAMES[b])     # measured: 0.82 to 0.94
    for a, b in ((L.GRASS, L.HILL), (L.TREE, L.SAND), (L.ROCK, L.DIRT), (L.SEA, L.SKY)):
        assert abs(correlation(a, b)) < 0.2, (L.CLASS_NAMES[a], L.CLASS_NAMES[b])   # 300 images: sd 0.06


def test_water_classes_look_alike_in_the_images():
    """Sea, river and lake are painted by one model: in images holding two of them their mean colours are
    closer than water is to the sky or to the ground around it."""
    water, other = [], []
    for i in range(400):
        label, _, image = L.draw(i)
        present = [c for c in (L.SEA, L.RIVER, L.LAKE) if (label == c).sum() >= 12]
        if len(present) < 2:
            continue
        means = {c: image[label == c].mean(0) for c in (*present, L.SKY) if (label == c).any()}
        water.append(np.linalg.norm(means[present[0]] - means[present[1]]))
        other.append(np.linalg.norm(means[present[0]] - means[L.SKY]))
    # measured: 58 images, a ratio of 0.22; with three independent water models it is 0.52
    assert len(water) >= 30
    assert np.median(water) < 0.35 * np.median(other)


# ---------------------------------------------------------------------------------------------------------
# the dataset mode

def test_loader_gives_labels_instances_and_images(parse_options):
    opt = parse_options("--dataset_mode", "landscapes", "--num_synthetic", "6", "--batchSize", "3")
    assert (opt.label_nc, opt.no_instance, opt.semantic_nc, opt.crop_size) == (35, False, 36, 64)
    batch = next(iter(data.create_dataloader(opt)))
    assert batch["label"].shape == (3, 1, 64, 64) and batch["label"].dtype == torch.int64
    assert batch["instance"].shape == (3, 1, 64, 64) and batch["instance"].max() >= L.INSTANCE_BASE
    assert batch["image"].shape == (3, 3, 64, 64) and -1 <= batch["image"].min() and batch["image"].max() <= 1
    assert torch.equal(torch.from_numpy(L.instance_class(batch["instance"].numpy())), batch["label"])
    dataset = data.create_dataset(opt)
    assert len(dataset) == 6 and dataset.class_names == list(L.CLASS_NAMES)
    no_instance = parse_options("--dataset_mode", "landscapes", "--no_instance")
    assert no_instance.semantic_nc == 35 and data.create_dataset(no_instance)[0]["instance"] == 0


def test_the_dataset_serves_the_drawn_scene(parse_options):
    opt = parse_options("--dataset_mode", "landscapes", "--load_size", "128", "--crop_size", "128", train=False)
    label, instance, image = L.draw(2, seed=opt.seed, size=128, phase="test")
    sample = data.create_dataset(opt)[2]
    assert np.array_equal(sample["label"][0].numpy(), label)
    assert np.array_equal(sample["instance"][0].numpy(), instance)
    assert np.allclose(((sample["image"] + 1) * 127.5).permute(1, 2, 0).numpy(), image, atol=1e-3)


def test_ddp_ranks_share_each_global_batch(parse_options):
    opt = parse_options("--dataset_mode", "landscapes", "--num_synthetic", "8", "--batchSize", "4")
    whole = data.create_dataloader(opt)
    ranks = [data.create_dataloader(opt, rank=r, world_size=2) for r in range(2)]
    for loader in (whole, *ranks):
        loader.sampler.set_epoch(3)
    for batch, *shares in zip(whole, *ranks):
        for key in ("label", "instance", "image"):
            assert torch.equal(batch[key], torch.cat([share[key] for share in shares]))


# ---------------------------------------------------------------------------------------------------------
# colours: the label palette of the pages and of the demo

def test_the_label_palette_gives_every_class_its_natural_colour():
    cmap = util.labelcolormap(L.NUM_CLASSES + 2, "landscapes")
    assert np.array_equal(cmap[:L.NUM_CLASSES], np.array(util.LANDSCAPES_COLORS, np.uint8))
    assert len({tuple(c) for c in cmap}) == L.NUM_CLASSES + 2      # the dontcare and instance ids differ too
    own = cmap[:L.NUM_CLASSES].astype(float)
    distance = np.linalg.norm(own[:, None] - own[None], axis=-1) + np.eye(L.NUM_CLASSES) * 1e9
    assert distance.min() >= 48
    assert tuple(cmap[L.SKY]) == (110, 170, 240) and tuple(cmap[L.GRASS]) == (150, 220, 90)
    assert np.array_equal(util.labelcolormap(37), util.labelcolormap(37, "synthetic"))   # other modes: as before
    palette = painting.class_palette(L.NUM_CLASSES, dataset_mode="landscapes")
    ids = np.random.default_rng(0).integers(0, L.NUM_CLASSES, (16, 24))
    assert np.array_equal(painting.colours_to_ids(painting.ids_to_colours(ids, palette), palette), ids)


def test_the_painting_demo_offers_the_landscape_palette(tmp_path):
    """What demo.py shows for a landscapes experiment (demo.load_page, without gradio): the classes' names and
    natural colours, chosen by the saved options' dataset mode, and the first test landscape on the canvas."""
    from checkpointing.storage import save_network
    from inference import Synthesizer
    from models import networks
    from options.demo_options import DemoOptions
    from options.train_options import TrainOptions
    argv = ["--name", "land", "--checkpoints_dir", str(tmp_path), "--gpu_ids", "-1"]
    with contextlib.redirect_stdout(io.StringIO()):
        opt = TrainOptions().parse([*argv, "--dataset_mode", "landscapes", "--netG", "spade", "--ngf", "8",
                                    *SMALL])
        save_network(networks.define_G(opt, torch.device("cpu"), verbose=False), str(tmp_path / "land"), "latest",
                     "G")
        demo_opt = DemoOptions().parse(argv)
        model = painting.DemoModel(Synthesizer.from_options(demo_opt))
        ids, names = painting.initial_layout(demo_opt, model.size)
    assert np.array_equal(model.palette, np.array(util.LANDSCAPES_COLORS, np.uint8))
    assert painting.class_names(names, demo_opt.label_nc) == list(L.CLASS_NAMES)
    assert np.array_equal(ids, L.draw(0, opt.seed, 32, "test")[0])    # the first test landscape
    assert model.run(ids).image.shape == (32, 32, 3)


# ---------------------------------------------------------------------------------------------------------
# one epoch of every generator, and the training page's label colours

# each generator with its discriminator on landscapes (scgan's preset: fpse, which needs 64x64), as small as
# it trains
SIZES = {"spade": SMALL, "pix2pixhd": ["--resnet_n_blocks", "1"], "scgan": ["--nrf", "8", "--nff", "8"],
         "ccfpse": SMALL}


@pytest.mark.parametrize("netG", ["spade", "pix2pixhd", "scgan", "ccfpse"])
def test_one_epoch_of_each_generator(tmp_path, netG):
    with contextlib.redirect_stdout(io.StringIO()):
        train_script.main(["--name", netG, "--checkpoints_dir", str(tmp_path), "--netG", netG, *TINY, *SIZES[netG]])
    folder = tmp_path / netG
    assert (folder / "latest_net_G.pth").is_file()
    page_label = np.asarray(Image.open(folder / "web" / "images" / "epoch001_iter0000002_input_label.png")
                            .convert("RGB"))
    colours = {tuple(c) for c in page_label.reshape(-1, 3)}
    assert colours <= set(util.LANDSCAPES_COLORS) and tuple(util.LANDSCAPES_COLORS[L.SKY]) in colours


# ---------------------------------------------------------------------------------------------------------
# the preview picture of docs/datasets.md

def test_preview_tool_writes_layouts_beside_their_images(tmp_path):
    from tools import preview_landscapes
    out = tmp_path / "preview.png"
    with contextlib.redirect_stdout(io.StringIO()):
        preview_landscapes.main(["--out", str(out), "--n", "3", "--size", "32", "--per_row", "2", "--seed", "4"])
    sheet = np.asarray(Image.open(out).convert("RGB"))
    assert sheet.shape == (32 + 4 + 32, 2 * (32 + 4 + 32) + 8, 3)   # pairs 8 apart, layout and image 4
    palette = util.labelcolormap(L.NUM_CLASSES + 2, "landscapes")
    for k, (y, x) in enumerate([(0, 0), (0, 76), (36, 0)]):
        label, _, image = L.draw(k, seed=4, size=32, phase="test")
        assert np.array_equal(sheet[y:y + 32, x:x + 32], palette[label])
        assert np.array_equal(sheet[y:y + 32, x + 36:x + 68], image)
    assert (sheet[36:, 76:] == 255).all()                          # the empty fourth cell stays white
