"""The spec layer: load config.json, check it, and hand out a typed model."""
from pyrunc import fastjson, paths
from pyrunc.errors import PyruncError
from pyrunc.spec.model import CONFIG, Loader

SUPPORTED = ((1, 0), (1, 1), (1, 2), (1, 3))
MAX_CONFIG_SIZE = 16 << 20  # runc's configs are ~3 KiB, podman's ~16 KiB
NEWEST = "1.3.0"


def parse_version(text):
    """(major, minor, patch) from '1.2.0' or '1.0.2-dev'; None if not a version."""
    core = text.split("-", 1)[0].split("+", 1)[0].split(".")
    if len(core) != 3 or not all(p.isdigit() for p in core):
        return None
    return tuple(int(p) for p in core)


def check_version(version, loader):
    parsed = parse_version(version)
    if parsed is None:
        loader.fail("ociVersion", f"{version!r} is not a version (like {NEWEST})")
    if parsed[:2] not in SUPPORTED:
        if parsed[:2] < SUPPORTED[0] or loader.strict:
            loader.fail("ociVersion", f"{version} is not supported (1.0.0 to 1.3.x)")
        loader.warnings.append(f"ociVersion: {version} is newer than {NEWEST}; "
                               "settings it adds are not known to pyrunc")


def load_bundle(bundle, strict=False):
    """Read BUNDLE/config.json; return (config, warnings). Raises PyruncError with a JSON path."""
    return load_config(read_config(bundle), strict)


def read_config(bundle):
    """BUNDLE/config.json as parsed JSON (a dict), with one clear error when it is not."""
    path = paths.join(bundle, "config.json")
    try:
        with open(path, "rb") as f:
            text = f.read(MAX_CONFIG_SIZE + 1)
        if len(text) > MAX_CONFIG_SIZE:
            raise PyruncError(f"{path}: larger than {MAX_CONFIG_SIZE >> 20} MiB", step="load")
        data = fastjson.loads(text)
    except FileNotFoundError:
        if not paths.isdir(bundle):
            raise PyruncError(f"bundle {bundle}: no such directory", step="load") from None
        raise PyruncError(f"{path}: no such file", step="load") from None
    except OSError as e:
        raise PyruncError(f"{path}: {e.strerror}", step="load") from None
    except ValueError as e:
        raise PyruncError(f"{path}: not valid JSON: {e}", step="load") from None
    if not isinstance(data, dict):
        raise PyruncError(f"{path}: expected a JSON object", step="load")
    return data


def load_config(data, strict=False):
    loader = Loader(strict)
    config = CONFIG.load(data, "", loader)
    check_version(config.ociVersion, loader)
    from pyrunc.spec.validate import validate
    validate(config, loader)
    return config, loader.warnings
