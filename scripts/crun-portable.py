"""Which of crun's tests are portable: prints "FILE<TAB>TEST<TAB>portable|crun-specific<TAB>why".

A test is crun-specific when its function, or a function of its own file that it calls
(transitively), uses an interface only crun has (MARKERS below): crun's run.oci.* annotations,
crun's --version/--help text and feature string, the `mounts` command, `delete --regex`, its
state files under --root, `run --keep`, `run --config` other than config.json, handlers (wasm,
krun), checkpoint/restore (CRIU, whose options crun and runc spell differently), the mount
options crun.1 lists under "Extensions to OCI" that no runtime-spec version has (copy-symlink,
src-nofollow, dest-nofollow, idmap= with crun's inline maps; tmpcopyup is runc's too), and
the wording of crun's messages (a literal with a `quoted` word, crun's style, or a phrase of
three words or more from a string of crun's C sources that the output must contain). What a
test only logs does not count.
Everything else is portable, spec behaviour that runc or pyrunc lack included.
Used by scripts/conformance-crun-tests.sh; reads the suite, changes nothing.
"""
import ast
import glob
import os
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
    (r"['\"](copy-symlink|src-nofollow|dest-nofollow)['\"]|['\"]idmap=",
     "crun's mount options (crun.1)"),
    # a literal with a `quoted` word is the text of one of crun's error messages, which the
    # test looks for in the runtime's output
    (r"(\"[^\"\n]*`[^\"\n]*`[^\"\n]*\")|('[^'\n]*`[^'\n]*`[^'\n]*')", "crun's error wording"),
]


def crun_strings(tests_dir):
    """Every C string literal of crun's sources (the suite's ../src), adjacent ones joined."""
    text = []
    for c in glob.glob(os.path.join(tests_dir, "..", "src", "**", "*.c"), recursive=True):
        body = open(c, errors="replace").read()
        for run in re.finditer(r'"(?:[^"\\\n]|\\.)*"(?:\s*"(?:[^"\\\n]|\\.)*")*', body):
            text.append("".join(re.findall(r'"((?:[^"\\\n]|\\.)*)"', run.group(0))))
    return "\n".join(text)


def crun_phrases(node, crun_text):
    """Phrases of three words or more from one of crun's messages that the test requires in
    the output (`"phrase" not in out` fails it); one it forbids is no crun interface."""
    found = []
    for sub in ast.walk(node):
        if isinstance(sub, ast.Compare) and isinstance(sub.left, ast.Constant) \
                and isinstance(sub.left.value, str) and isinstance(sub.ops[0], ast.NotIn):
            phrase = sub.left.value.strip()
            if len(phrase.split()) >= 3 and phrase in crun_text:
                found.append(phrase)
    return found


def classify(path, crun_text=""):
    src = open(path).read()
    tree = ast.parse(src)
    funcs = {n.name: n for n in tree.body if isinstance(n, ast.FunctionDef)}
    tests = {}
    for n in tree.body:
        if isinstance(n, ast.Assign) and any(getattr(t, "id", "") == "all_tests" for t in n.targets):
            for k, v in zip(n.value.keys, n.value.values):
                tests[k.value] = v
    for name, value in tests.items():
        seen, todo, text, phrases = set(), [value], [], []
        while todo:
            node = todo.pop()
            text.append(ast.get_source_segment(src, node) or "")
            phrases += crun_phrases(node, crun_text) if crun_text else []
            for sub in ast.walk(node):
                if isinstance(sub, ast.Name) and sub.id in funcs and sub.id not in seen:
                    seen.add(sub.id)
                    todo.append(funcs[sub.id])
        # what a test only logs decides nothing
        body = "\n".join(l for l in "\n".join(text).splitlines() if "logger." not in l)
        why = [w for rx, w in MARKERS if re.search(rx, body)]
        if phrases:
            why.append(f"crun's wording ({phrases[0]!r})")
        yield name, ("crun-specific" if why else "portable"), "; ".join(why)


def main():
    tests_dir, files = sys.argv[1], sys.argv[2:]
    crun_text = crun_strings(tests_dir)
    for f in files:
        for name, verdict, why in classify(f"{tests_dir}/{f}", crun_text):
            print(f"{f}\t{name}\t{verdict}\t{why}")


if __name__ == "__main__":
    main()
