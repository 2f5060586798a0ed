"""MindSpore Hub descriptors: markdown files whose YAML front matter names the network and its assets."""

from __future__ import annotations

import re
from dataclasses import dataclass

import yaml

from job.errors import BadInput

SHA256_PATTERN = re.compile(r"^[0-9a-f]{64}$")


@dataclass(frozen=True)
class Asset:
    """One downloadable file of a hub entry."""

    file_format: str
    link: str
    sha256: str

    @property
    def file_name(self) -> str:
        return self.link.rstrip("/").rsplit("/", 1)[-1]


@dataclass(frozen=True)
class Descriptor:
    """The parts of a hub descriptor the loader uses."""

    model_name: str
    repo_link: str
    assets: tuple[Asset, ...]
    fields: dict

    def asset(self, file_format: str) -> Asset:
        for asset in self.assets:
            if asset.file_format.lower() == file_format.lower():
                return asset
        formats = ", ".join(asset.file_format for asset in self.assets) or "none"
        raise BadInput(
            f"hub entry '{self.model_name}' has no {file_format} asset (it lists: {formats}); "
            f"choose an entry that publishes a {file_format} checkpoint"
        )


def _front_matter(text: str, source: str) -> str:
    lines = text.splitlines()
    fences = [index for index, line in enumerate(lines) if line.strip() == "---"]
    if len(fences) < 2:
        raise BadInput(
            f"malformed hub descriptor {source}: no front matter between two '---' lines; "
            f"check FT_MODEL points at a MindSpore Hub .md file"
        )
    return "\n".join(lines[fences[0] + 1 : fences[1]])


def _unbracket(value: object) -> str:
    text = str(value).strip()
    return text[1:-1].strip() if text.startswith("<") and text.endswith(">") else text


def _parse_asset(entry: object, source: str, index: int) -> Asset:
    if not isinstance(entry, dict):
        raise BadInput(f"malformed hub descriptor {source}: asset {index} is not a mapping")
    missing = [key for key in ("file-format", "asset-link", "asset-sha256") if not entry.get(key)]
    if missing:
        raise BadInput(f"malformed hub descriptor {source}: asset {index} lacks {', '.join(missing)}")
    sha256 = str(entry["asset-sha256"]).strip().lower()
    if not SHA256_PATTERN.match(sha256):
        raise BadInput(
            f"malformed hub descriptor {source}: asset {index} has an invalid asset-sha256 "
            f"({entry['asset-sha256']!r}); it must be 64 hex digits"
        )
    return Asset(str(entry["file-format"]).strip(), _unbracket(entry["asset-link"]), sha256)


def parse_descriptor(text: str, source: str) -> Descriptor:
    """Parse a descriptor's text; `source` names it in error messages."""
    try:
        fields = yaml.safe_load(_front_matter(text, source))
    except yaml.YAMLError as exc:
        problem = str(exc).replace("\n", " ")
        raise BadInput(f"malformed hub descriptor {source}: front matter is not valid YAML ({problem})") from exc
    if not isinstance(fields, dict):
        raise BadInput(f"malformed hub descriptor {source}: front matter is not a mapping of fields")
    if not fields.get("model-name"):
        raise BadInput(f"malformed hub descriptor {source}: 'model-name' is missing")
    assets = fields.get("asset") or []
    if not isinstance(assets, list):
        raise BadInput(f"malformed hub descriptor {source}: 'asset' must be a list")
    parsed = tuple(_parse_asset(entry, source, index) for index, entry in enumerate(assets))
    return Descriptor(str(fields["model-name"]).strip(), _unbracket(fields.get("repo-link", "")), parsed, fields)


def render_descriptor(model_name: str, assets: list[Asset], **fields: object) -> str:
    """A descriptor in the hub's own layout, for publishing entries to a private hub or mirror."""
    front = {
        "model-name": model_name,
        **fields,
        "asset": [
            {"file-format": asset.file_format, "asset-link": asset.link, "asset-sha256": asset.sha256}
            for asset in assets
        ],
    }
    return f"# {model_name}\n\n---\n\n{yaml.safe_dump(front, sort_keys=False)}\n---\n"
