"""Which of crun's tests are portable: prints "FILE<TAB>TEST<TAB>portable|crun-specific<TAB>why".

A test is crun-specific when its function, or a function of its own file that it calls
(transitively), uses an interface only crun has (MARKERS below): crun's run.oci.* annotations,
crun's --version/--help text and feature string, the `mounts` command, `delete --regex`, its
state files under --root, `run --keep`, `run --config` other than config.json, handlers (wasm,
krun), checkpoint/restore (CRIU, whose options crun and runc spell differently), and the
wording of crun's error messages (a literal with a `quoted` word, crun's style, looked for in
the output). What a test only logs does not count.
Everything else is portable, spec behaviour that runc or pyrunc lack included.
Used by scripts/conformance-crun-tests.sh; reads the suite, changes nothing.
"""
import ast
import re
import sys

MARKERS = [
    (r"run\.oci\.", "crun annotation run.oci.*"),
    (r"get_crun_feature_string|['\"]--version['\"]|['\"]--help['\"]", "crun's --version/--help text"),
    (r"\[\s*['\"]mounts['\"]\s*,", "crun's mounts command"),
    (r"keep\s*=\s*True", "crun's run --keep"),
    (r"relative_config_path\s*=", "crun's run --config"),
    (r"['\"]--regex['\"]", "crun's delete --regex"),
    (r"get_tests_root_status\(\)", "crun's state files (read under --root)"),
    (r"\bhandler\b|wasm|krun", "crun's handlers"),
    (r"checkpoint|restore|criu", "checkpoint/restore (CRIU)"),
    # a literal with a `quoted` word is the text of one of crun's error messages, which the
    # test looks for in the runtime's output
    (r"(\"[^\"\n]*`[^\"\n]*`[^\"\n]*\")|('[^'\n]*`[^'\n]*`[^'\n]*')", "crun's error wording"),
]


def classify(path):
    src = open(path).read()
    tree = ast.parse(src)
    funcs = {n.name: n for n in tree.body if isinstance(n, ast.FunctionDef)}
    tests = {}
    for n in tree.body:
        if isinstance(n, ast.Assign) and any(getattr(t, "id", "") == "all_tests" for t in n.targets):
            for k, v in zip(n.value.keys, n.value.values):
                tests[k.value] = v
    for name, value in tests.items():
        seen, todo, text = set(), [value], []
        while todo:
            node = todo.pop()
            text.append(ast.get_source_segment(src, node) or "")
            for sub in ast.walk(node):
                if isinstance(sub, ast.Name) and sub.id in funcs and sub.id not in seen:
                    seen.add(sub.id)
                    todo.append(funcs[sub.id])
        # what a test only logs decides nothing
        body = "\n".join(l for l in "\n".join(text).splitlines() if "logger." not in l)
        why = [w for rx, w in MARKERS if re.search(rx, body)]
        yield name, ("crun-specific" if why else "portable"), "; ".join(why)


def main():
    tests_dir, files = sys.argv[1], sys.argv[2:]
    for f in files:
        for name, verdict, why in classify(f"{tests_dir}/{f}"):
            print(f"{f}\t{name}\t{verdict}\t{why}")


if __name__ == "__main__":
    main()
