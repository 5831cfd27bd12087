"""Write the bundled synthetic face dataset (data/synthetic.py) to disk.

    python -m tools.write_synthetic --out DIR --n 200 [--size 128 --seed 0 --phase train]
    python -m tools.write_synthetic --unaligned --out DIR --n 200 --size 64     # trainA/ trainB/ testA/ testB/

The first writes labels/ and images/ for --dataset_mode custom; the second the two domains of unpaired
translation in CycleGAN's layout for --dataset_mode unaligned.
"""
import argparse
import os

from data.synthetic import write_dataset, write_unaligned_dataset


def main(argv=None):
    parser = argparse.ArgumentParser(description="Write the synthetic face dataset in the custom layout, or its "
                                                 "two domains in CycleGAN's layout (--unaligned).")
    parser.add_argument("--out", required=True, help="output folder; gets labels/ and images/")
    parser.add_argument("--n", type=int, default=200, help="number of samples")
    parser.add_argument("--size", type=int, default=128, help="image side in pixels")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--phase", default="train", help="train or test: which samples to draw")
    parser.add_argument("--unaligned", action="store_true",
                        help="write domains A and B as trainA/ trainB/ testA/ testB/ (--n images each)")
    args = parser.parse_args(argv)
    if args.unaligned:
        write_unaligned_dataset(args.out, args.n, args.size, args.seed)
        print(f"wrote {args.n} images to each of trainA, trainB, testA, testB under {args.out}; train on them with:")
        print(f"python train.py --name synthetic_unpaired --model unpaired --dataset_mode unaligned --dataroot "
              f"{args.out} --load_size {args.size} --crop_size {args.size} --vgg_weights PATH")
        return
    write_dataset(args.out, args.n, args.size, args.seed, args.phase)
    labels, images = os.path.join(args.out, "labels"), os.path.join(args.out, "images")
    print(f"wrote {args.n} label maps to {labels} and {args.n} images to {images}; train on them with:")
    print(f"python train.py --name synthetic_custom --dataset_mode custom --label_dir {labels} "
          f"--image_dir {images} --label_nc 9 --no_instance --load_size {args.size} --crop_size {args.size}")


if __name__ == "__main__":
    main()
