"""``python -m imagecache.cli``: the ``imagecache`` command without its console script."""

from imagecache.cli.root import main

if __name__ == "__main__":
    main(prog_name="imagecache")
