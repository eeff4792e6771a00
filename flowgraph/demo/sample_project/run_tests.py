"""Run every test_* function in tests/test_*.py, without pytest; the last line is a JSON summary."""

import importlib
import json
import sys
import traceback
from pathlib import Path


def main() -> int:
    sys.path.insert(0, str(Path(__file__).parent))  # -I leaves it off the path
    passed = failed = 0
    for path in sorted(Path(__file__).parent.glob("tests/test_*.py")):
        name = f"tests.{path.stem}"
        try:
            module = importlib.import_module(name)
        except Exception:  # a module that does not import counts as one failure, not a crash
            failed += 1
            print(f"ERROR {name}\n{traceback.format_exc()}")
            continue
        for attr, test in sorted(vars(module).items()):
            if not (attr.startswith("test_") and callable(test)):
                continue
            try:
                test()
            except Exception:
                failed += 1
                print(f"FAIL {name}.{attr}\n{traceback.format_exc()}")
            else:
                passed += 1
                print(f"ok   {name}.{attr}")
    print(json.dumps({"passed": passed, "failed": failed}))
    return 1 if failed or not passed else 0


if __name__ == "__main__":
    sys.exit(main())
