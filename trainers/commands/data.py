"""`python -m builder data ...`: preparing datasets for training at scale. Registered into
`builder.cli`'s command registry when the `trainers` plugin loads."""

from __future__ import annotations

from builder.cli import Command, UsageError, common_options, register_command


def _data_arguments(parser) -> None:
    actions = parser.add_subparsers(dest="data_action", metavar="ACTION")
    pack = actions.add_parser("pack", help="write an image folder as TFRecord shards (--data tfrecord:DIR)",
                              description="Split an image folder (class sub-folders) as `image_folder` does, and "
                                          "write each split as TFRecord shards with an index.json.")
    pack.add_argument("folder", metavar="IMAGE_FOLDER")
    pack.add_argument("-o", "--out", required=True, metavar="DIR", help="an empty or new folder for the shards")
    pack.add_argument("--shard-size", type=int, default=1024, metavar="N", help="images per shard (default 1024)")
    pack.add_argument("--image-size", type=int, nargs=2, metavar=("H", "W"),
                      help="resize and re-encode as JPEG (default: keep each file's bytes as they are)")
    pack.add_argument("--seed", type=int, default=0, help="seed of the stratified split (as data.seed)")
    pack.add_argument("--validation-split", type=float, default=0.1, help="fraction for validation (default 0.1)")
    pack.add_argument("--test-split", type=float, default=0.2, help="fraction for test (default 0.2)")
    pack.add_argument("--strict", action="store_true", help="stop at the first bad image instead of skipping it")
    common_options(pack, overrides=False)


def cmd_data(args) -> int:
    if args.data_action != "pack":
        raise UsageError("data needs an action: pack")
    if args.shard_size < 1:
        raise UsageError("--shard-size must be at least 1")
    from ..data.records import pack

    split = {"seed": args.seed, "validation_split": args.validation_split, "test_split": args.test_split,
             "strict": args.strict}
    index = pack(args.folder, args.out, args.shard_size, args.image_size, split)
    counts = ", ".join(f"{name} {entry['count']} in {len(entry['shards'])} shard(s)"
                       for name, entry in index["splits"].items())
    print(f"packed {args.folder} into {args.out}: {counts}; {len(index['skipped'])} bad file(s) skipped. "
          f"Train with --data tfrecord:{args.out}")
    return 0


register_command(Command("data", "prepare data for training at scale (data pack: TFRecord shards)",
                         "Prepare datasets: `data pack IMAGE_FOLDER -o DIR` writes TFRecord shards that "
                         "`--data tfrecord:DIR` streams.", _data_arguments, cmd_data, 45))
