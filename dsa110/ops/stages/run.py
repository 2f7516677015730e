"""``python -m dsa110.ops.stages.run <kind> <params json>``: one stage in this process.

The parameters are the stored (validated) ones. The stage's outcome is the last
``@@result`` line; an error is printed and the process exits 1 (the job fails with it).
"""

from __future__ import annotations

import importlib
import json
import sys
import traceback
from typing import Any, Final

from dsa110.ops.stages.common import StageContext, StageError, result

MODULES: Final = {
    "convert": "dsa110.ops.stages.convert",
    "calibrate": "dsa110.ops.stages.calibrate",
    "apply": "dsa110.ops.stages.apply",
    "image": "dsa110.ops.stages.image",
    "photometry": "dsa110.ops.stages.photometry",
    "mosaic": "dsa110.ops.stages.mosaic",
    "workflow": "dsa110.ops.stages.workflow",
}


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2 or args[0] not in MODULES:
        print(f"usage: python -m {__spec__.name if __spec__ else 'run'} <{'|'.join(MODULES)}> <params json>")
        return 2
    kind, params = args[0], json.loads(args[1])
    ctx = StageContext.from_env()
    module = importlib.import_module(MODULES[kind])
    try:
        outcome: Any = module.run(ctx, params)
    except StageError as exc:
        print(f"ERROR: {exc}", flush=True)
        return 1
    except Exception:
        traceback.print_exc()
        return 1
    result(outcome)
    return 0


if __name__ == "__main__":
    sys.exit(main())
