"""Renders chat templates with Python's Jinja2 set up the way transformers' apply_chat_template does
(ImmutableSandboxedEnvironment, trim_blocks, lstrip_blocks, loopcontrols, the {% generation %} tag,
tojson = json.dumps(ensure_ascii=False, ...), raise_exception, strftime_now). Written from the documented
behaviour; this is the reference for Python semantics where @huggingface/jinja differs (str(True), None, reprs).

usage: python3 render-python-jinja2.py < cases.json   (same format as render-huggingface-jinja.mjs)
"""
import json
import sys
from datetime import datetime

import jinja2
from jinja2.ext import Extension, loopcontrols
from jinja2.sandbox import ImmutableSandboxedEnvironment


class GenerationTag(Extension):
    """{% generation %}...{% endgeneration %}: renders its body unchanged (transformers marks assistant text with it)."""

    tags = {"generation"}

    def parse(self, parser):
        lineno = next(parser.stream).lineno
        body = parser.parse_statements(("name:endgeneration",), drop_needle=True)
        return jinja2.nodes.CallBlock(self.call_method("_render", []), [], [], body).set_lineno(lineno)

    def _render(self, caller):
        return caller()


class TemplateRaised(Exception):
    pass


def raise_exception(message):
    raise TemplateRaised(message)


def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
    return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)


def strftime_now(format):
    return datetime.now().strftime(format)


env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=[GenerationTag, loopcontrols])
env.filters["tojson"] = tojson
env.globals["raise_exception"] = raise_exception
env.globals["strftime_now"] = strftime_now

results = []
for case in json.loads(sys.stdin.buffer.read().decode("utf-8")):
    try:
        results.append({"text": env.from_string(case["template"]).render(**case["context"])})
    except Exception as e:  # the comparison wants the failure, not a crash
        results.append({"error": f"{type(e).__name__}: {e}"})
sys.stdout.reconfigure(encoding="utf-8")
sys.stdout.write(json.dumps({"version": jinja2.__version__, "results": results}, ensure_ascii=False))
