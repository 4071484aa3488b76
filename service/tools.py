"""Function-calling definitions of the `search` and `ask` tools, generated from the API's request models.

The JSON Schema of each tool is the request model's own schema with references
inlined, so it cannot drift from what `/v1/search` and `/v1/ask` accept.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from .schemas import AskRequest, SearchRequest, ToolDefinition, ToolFunction

DESCRIPTIONS = {
    "search": (
        "Search the indexed Chinese documents (traditional or simplified, any phrasing) and return ranked "
        "passages in their original script, with document id, section, offsets and score (the calibrated "
        "probability that the passage's document is relevant), for citing."
    ),
    "ask": (
        "Answer a question from the indexed Chinese documents: the shortest extractive answer (a number, date, "
        "name or phrase) in the original script with its document offsets, the sentence it stands in (answer in "
        "bold in sentence_marked) and a calibrated probability that it is right, or null when the documents do "
        "not answer it; plus evidence passages."
    ),
}
MODELS: dict[str, type[BaseModel]] = {"search": SearchRequest, "ask": AskRequest}


def _inline(node: Any, defs: dict[str, Any]) -> Any:
    if isinstance(node, dict):
        if "$ref" in node:
            return _inline(defs[node["$ref"].rsplit("/", 1)[-1]], defs)
        return {key: _inline(value, defs) for key, value in node.items() if key != "$defs"}
    if isinstance(node, list):
        return [_inline(value, defs) for value in node]
    return node


def parameters_schema(model: type[BaseModel]) -> dict[str, Any]:
    """The model's JSON Schema with every ``$ref`` inlined (function-calling APIs want one object)."""
    schema = model.model_json_schema()
    inlined: dict[str, Any] = _inline(schema, schema.get("$defs", {}))
    inlined.pop("title", None)
    return inlined


def tool_definitions() -> list[ToolDefinition]:
    return [
        ToolDefinition(
            function=ToolFunction(name=name, description=DESCRIPTIONS[name], parameters=parameters_schema(model))
        )
        for name, model in MODELS.items()
    ]
