"""Hatchling hook: build the guest .wasm into the package before packing."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

from hatchling.builders.hooks.plugin.interface import BuildHookInterface


class GuestBuildHook(BuildHookInterface):
    PLUGIN_NAME = "custom"

    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        build_py = Path(self.root) / "guest" / "build.py"
        spec = importlib.util.spec_from_file_location("mcfields_guest_build", build_py)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        output = Path(self.root) / "mcfields" / "_guest" / "mcfields.wasm"
        digest = module.compile_guest(output)
        expected = module.expected_digest()
        if digest != expected:
            raise module.BuildError(
                f"built guest sha256 {digest} differs from guest/wasm.sha256 ({expected})"
            )
        # Pure Python plus an architecture-independent .wasm.
        build_data["pure_python"] = True
        build_data["tag"] = "py3-none-any"
