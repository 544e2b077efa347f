"""A small command-line parser for the commands on every container's path.

argparse costs about 15 ms to import here (it pulls in re, gettext and locale); a runtime
pays that on each create, start, state and delete. This parser reads one table per command
and accepts what runc's (Go) clients send: `--flag value`, `--flag=value`, `-f value`,
single-dash long names (`-bundle`), `--bool=true|false`, repeated options. `--help` builds an
argparse parser from the same table, so the help text needs no second definition.
"""


class Opt:
    """names: '--bundle', '-b'; kind: 'flag', 'str', 'int' or 'list' (repeatable str)."""
    __slots__ = ("names", "dest", "kind", "default", "help", "hidden")

    def __init__(self, names, kind="flag", default=None, help="", dest=None, hidden=False):
        self.names = names.split()
        long = [n for n in self.names if n.startswith("--")] or self.names
        self.dest = dest or long[0].lstrip("-").replace("-", "_")
        self.kind = kind
        self.default = ([] if kind == "list" else False if kind == "flag" else default)
        self.help = help
        self.hidden = hidden


class Arg:
    """A positional: kind 'one', 'optional' or 'rest' (everything left, verbatim)."""
    __slots__ = ("dest", "kind", "default", "help")

    def __init__(self, dest, kind="one", default=None, help=""):
        self.dest, self.kind, self.default, self.help = dest, kind, default, help


class Namespace:
    def __init__(self, **kw):
        self.__dict__.update(kw)


class UsageError(Exception):
    pass


def parse(argv, options, positionals, prog):
    """A Namespace of dests; UsageError for a bad command line; None after printing help."""
    by_name = {}
    for opt in options:
        for name in opt.names:
            by_name[name] = opt
            if name.startswith("--"):
                by_name[name[1:]] = opt  # Go's flag package takes -bundle as well
    values = {o.dest: (list(o.default) if o.kind == "list" else o.default) for o in options}
    values.update({a.dest: ([] if a.kind == "rest" else a.default) for a in positionals})
    pending = list(positionals)
    only_positionals = False
    i = 0
    while i < len(argv):
        word = argv[i]
        i += 1
        if not only_positionals and word == "--":
            only_positionals = True
            continue
        if not only_positionals and word.startswith("-") and len(word) > 1:
            if word in ("-h", "--help"):
                print_help(options, positionals, prog)
                return None
            name, eq, inline = word.partition("=")
            opt = by_name.get(name)
            if opt is None:
                raise UsageError(f"unknown option {name}")
            if opt.kind == "flag":
                if eq and inline.lower() not in ("true", "false", "1", "0"):
                    raise UsageError(f"{name} takes no value (or true/false)")
                values[opt.dest] = not eq or inline.lower() in ("true", "1")
                continue
            if not eq:
                if i >= len(argv):
                    raise UsageError(f"{name} needs a value")
                inline = argv[i]
                i += 1
            if opt.kind == "int":
                try:
                    inline = int(inline)
                except ValueError:
                    raise UsageError(f"{name}: {inline!r} is not a number") from None
            if opt.kind == "list":
                values[opt.dest].append(inline)
            else:
                values[opt.dest] = inline
            continue
        if not pending:
            raise UsageError(f"unexpected argument {word!r}")
        arg = pending.pop(0)
        if arg.kind == "rest":
            rest = argv[i - 1:]
            values[arg.dest] = rest[1:] if rest[:1] == ["--"] else rest  # `exec ID -- CMD`
            break
        values[arg.dest] = word
        if pending and pending[0].kind == "rest":
            only_positionals = True  # `exec ID CMD...`: the command's own flags are its own
    for arg in pending:
        if arg.kind == "one":
            raise UsageError(f"missing {arg.dest.upper()}")
    return Namespace(**values)


def print_help(options, positionals, prog, description=""):
    import argparse
    p = argparse.ArgumentParser(prog=prog, description=description)
    for opt in options:
        if opt.hidden:
            continue
        kw = {"dest": opt.dest, "help": opt.help}
        if opt.kind == "flag":
            kw["action"] = "store_true"
        elif opt.kind == "list":
            kw["action"] = "append"
        else:
            kw["metavar"] = opt.dest.upper()
        p.add_argument(*opt.names, **kw)
    for arg in positionals:
        nargs = {"one": None, "optional": "?", "rest": "..."}[arg.kind]
        p.add_argument(arg.dest, nargs=nargs, help=arg.help, metavar=arg.dest.upper())
    p.print_help()
