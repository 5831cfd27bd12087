"""Listing the image files of a folder: natural sort, the `files.list` cache, and errors that name the folder.

`--cache_filelist_write` writes the files found under a folder to FOLDER/files.list (paths relative to the
folder); `--cache_filelist_read` reads that list instead of walking the folder, which matters for large
datasets on network file systems. A folder without files.list is walked as usual.
"""
import fnmatch
import os
import re

from .base_dataset import DatasetError

IMG_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".tif", ".tiff", ".webp")
CACHE_NAME = "files.list"


def is_image_file(filename):
    return filename.lower().endswith(IMG_EXTENSIONS)


def natural_key(path):
    """'img2.png' sorts before 'img10.png'."""
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", path)]


def natural_sort(paths):
    return sorted(paths, key=natural_key)


def make_dataset(folder, recursive=False, read_cache=False, write_cache=False):
    """The image files in `folder` (and its subfolders when `recursive`), naturally sorted."""
    cache = os.path.join(folder, CACHE_NAME)
    if read_cache and os.path.isfile(cache):
        with open(cache) as f:
            return natural_sort(os.path.join(folder, line.strip()) for line in f if line.strip())

    if not os.path.isdir(folder):
        raise DatasetError(f"folder {folder} does not exist")
    paths = []
    if recursive:
        for root, dirs, files in os.walk(folder, followlinks=True):
            dirs.sort()
            paths += [os.path.join(root, name) for name in files if is_image_file(name)]
    else:
        paths = [os.path.join(folder, name) for name in os.listdir(folder)
                 if is_image_file(name) and os.path.isfile(os.path.join(folder, name))]
    paths = natural_sort(paths)

    if write_cache:
        try:
            with open(cache, "w") as f:
                f.writelines(os.path.relpath(p, folder) + "\n" for p in paths)
        except OSError as e:
            raise DatasetError(f"--cache_filelist_write: cannot write {cache}: {e}") from e
        print(f"wrote the list of {len(paths)} files under {folder} to {cache}")
    return paths


def find_files(folder, patterns, what, opt, recursive=False, option=None):
    """The files in `folder` whose names match one of the glob `patterns` (e.g. "*_labelIds.png"), naturally
    sorted. A missing folder or no match raises DatasetError naming the folder and the patterns. `option`: the
    option that names `folder` itself (custom's --label_dir); by default it lies under --dataroot."""
    if isinstance(patterns, str):
        patterns = (patterns,)
    cache_hit = opt.cache_filelist_read and os.path.isfile(os.path.join(folder, CACHE_NAME))
    if not cache_hit and not os.path.isdir(folder):
        check = (option or f"--dataroot, --phase and the folder layout of --dataset_mode {opt.dataset_mode}")
        raise DatasetError(f"the folder of {what} {folder} does not exist (check {check})")
    paths = make_dataset(folder, recursive, read_cache=opt.cache_filelist_read,
                         write_cache=opt.cache_filelist_write and not cache_hit)
    lowered = [p.lower() for p in patterns]
    paths = [p for p in paths if any(fnmatch.fnmatchcase(os.path.basename(p).lower(), q) for q in lowered)]
    if not paths:
        where = " or its subfolders" if recursive else ""
        raise DatasetError(f"no {what} found in {folder}{where}: looked for {' or '.join(patterns)}")
    return paths
