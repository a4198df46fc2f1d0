#!/usr/bin/python3
"""Renders chat templates the way transformers' apply_chat_template does (jinja2 sandbox with
trim_blocks, lstrip_blocks and loopcontrols; tojson as json.dumps; raise_exception), as the
reference for the C++ renderer. Reads a JSON list of cases
{"template": text, "messages": [...], "add_generation_prompt": bool, "extra": {...}} on stdin and
writes a JSON list of rendered strings (or {"error": message})."""

import json
import sys

import jinja2
import jinja2.ext
from jinja2.sandbox import ImmutableSandboxedEnvironment


def raise_exception(message):
    raise jinja2.exceptions.TemplateError(message)


def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
    return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)


env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=[jinja2.ext.loopcontrols])
env.filters["tojson"] = tojson
env.globals["raise_exception"] = raise_exception

out = []
for case in json.load(sys.stdin):
    try:
        template = env.from_string(case["template"])
        out.append(template.render(messages=case["messages"], add_generation_prompt=case["add_generation_prompt"],
                                   **case.get("extra", {})))
    except Exception as e:  # noqa: BLE001 - the message is the result
        out.append({"error": str(e)})
json.dump(out, sys.stdout, ensure_ascii=False)
