"""Make a bundle with one of the article's snippets laid over the default config.

    python examples/article/apply.py NAME DIR [--seccomp PROFILE] [-- ARGS...]

NAME is a directory here (capabilities, seccomp-whitelist, ...). DIR gets a busybox rootfs
(pyrunc.bundle.make_bundle) and a config.json = default config merged with NAME/fragment.json
(pyrunc.bundle.merge: objects key by key, lists replaced, mounts and namespaces added or
replaced by destination / type). --seccomp PROFILE then sets linux.seccomp to a profile
(`pyrunc seccomp learn`'s). Then: `pyrunc run --bundle DIR ID` (or runc).
"""
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(os.path.dirname(HERE)))  # the repository, for pyrunc

from pyrunc.bundle import make_bundle, merge  # noqa: E402


def main(argv):
    if "--" in argv:
        cut = argv.index("--")
        argv, args = argv[:cut], argv[cut + 1:]
    else:
        args = None
    profile = None
    if "--seccomp" in argv[:-1]:
        at = argv.index("--seccomp")
        profile = argv[at + 1]
        argv = argv[:at] + argv[at + 2:]
    if len(argv) != 2 or not os.path.isfile(os.path.join(HERE, argv[0], "fragment.json")):
        names = sorted(d for d in os.listdir(HERE)
                       if os.path.isfile(os.path.join(HERE, d, "fragment.json")))
        print(f"usage: apply.py NAME DIR [--seccomp PROFILE] [-- ARGS...]; NAME is one of {', '.join(names)}",
              file=sys.stderr)
        return 2
    name, directory = argv
    path = make_bundle(directory, args=args or ["sh"])
    with open(os.path.join(path, "config.json")) as f:
        config = json.load(f)
    with open(os.path.join(HERE, name, "fragment.json")) as f:
        config = merge(config, json.load(f))
    if profile:
        with open(profile) as f:
            config.setdefault("linux", {})["seccomp"] = json.load(f)
    with open(os.path.join(path, "config.json"), "w") as f:
        json.dump(config, f, indent="\t")
        f.write("\n")
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
