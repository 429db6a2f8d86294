using LlavaNative.Model.Templates;
using Xunit;

namespace LlavaNative.Tests.Templates;

/// <summary>
/// Interpreter behaviour with expected values taken from Python's Jinja2 3.1 as transformers configures it
/// (the reference agreement tests check the same against the real renderers).
/// </summary>
public sealed class JinjaTemplateTests
{
    private static string Render(string template, params (string Name, object? Value)[] variables) =>
        JinjaTemplate.Parse(template, "test").Render(variables.ToDictionary(v => v.Name, v => v.Value));

    private static TemplateException Fails(string template, params (string Name, object? Value)[] variables) =>
        Assert.Throws<TemplateException>(() => Render(template, variables));

    [Theory]
    // trim_blocks: the newline after a block or comment tag goes, not after an expression.
    [InlineData("{% if true %}\nx\n{% endif %}\ny", "x\ny")]
    [InlineData("{# c #}\nx", "x")]
    [InlineData("{{ 'a' }}\nb", "a\nb")]
    // lstrip_blocks: indentation before a block tag goes, before an expression it stays.
    [InlineData("a\n    {% if true %}b{% endif %}", "a\nb")]
    [InlineData("a\n  {{ 'b' }}", "a\n  b")]
    [InlineData("a  {% if true %}b{% endif %}", "a  b")]
    // '-' strips all white space on that side, newlines included; '+' keeps what lstrip/trim would remove.
    [InlineData("a \n {%- if true -%} \n b {%- endif %}", "ab")]
    [InlineData("a\n  {%+ if true %}b{% endif +%}\nc", "a\n  b\nc")]
    [InlineData("x {#- comment -#} y", "xy")]
    // One trailing newline of the template is dropped; \r\n becomes \n.
    [InlineData("a\r\nb\n", "a\nb")]
    [InlineData("a\n\n", "a\n")]
    [InlineData("{% raw %}{{ x }}{% endraw %}", "{{ x }}")]
    public void WhitespaceControl(string template, string expected) => Assert.Equal(expected, Render(template));

    [Theory]
    [InlineData("{{ true }}|{{ none }}|{{ [1, 'a', none] }}|{{ {'k': (1,)} }}", "True|None|[1, 'a', None]|{'k': (1,)}")]
    [InlineData("{{ 1.0 }} {{ 1e16 }} {{ 1e15 }} {{ 0.0001 }} {{ 0.00001 }} {{ 1/3 }} {{ -2.5e-10 }}", "1.0 1e+16 1000000000000000.0 0.0001 1e-05 0.3333333333333333 -2.5e-10")]
    [InlineData("{{ 7 // 2 }} {{ -7 // 2 }} {{ -7 % 3 }} {{ 7 % -3 }} {{ 2 ** 10 }} {{ 7 / 2 }} {{ 4 / 2 }}", "3 -4 2 -2 1024 3.5 2.0")]
    public void PythonValues(string template, string expected) => Assert.Equal(expected, Render(template));

    [Fact]
    public void ConcatBindsTighterThanPlus()
    {
        // Jinja2's precedence: + below ~ below *, so 1 + 2 ~ 3 * 2 is 1 + ('2' ~ '6'), an int plus a str.
        Assert.Contains("unsupported operand type(s) for +: 'int' and 'str'", Fails("{{ 1 + 2 ~ 3 * 2 }}").Problem);
        Assert.Equal("a36", Render("{{ 'a' ~ 1 + 2 ~ 3 * 2 if false else 'a' ~ (1 + 2) ~ 3 * 2 }}"));
    }

    [Fact]
    public void LoopVariablesFilterElseBreakContinue()
    {
        Assert.Equal("1/3:a(first) 2/3:b 3/3:c(last) ",
            Render("{% for x in xs %}{{ loop.index }}/{{ loop.length }}:{{ x }}{{ '(first)' if loop.first }}{{ '(last)' if loop.last }} {% endfor %}",
                ("xs", new[] { "a", "b", "c" })));
        Assert.Equal("2,1,0|", Render("{% for x in [5, 6, 7] %}{{ loop.revindex0 }}{{ ',' if not loop.last }}{% endfor %}|"));
        Assert.Equal("1:b 2:c ", Render("{% for x in ['a', 'b', 'c'] if x != 'a' %}{{ loop.index }}:{{ x }} {% endfor %}"));
        Assert.Equal("empty", Render("{% for x in [] %}x{% else %}empty{% endfor %}"));
        Assert.Equal("013", Render("{% for i in range(6) %}{% if i == 2 %}{% continue %}{% endif %}{% if i == 4 %}{% break %}{% endif %}{{ i }}{% endfor %}"));
        Assert.Equal("a-b|b-None", Render("{% for x in ['a', 'b'] %}{{ x }}-{{ loop.nextitem if loop.nextitem is defined else none }}{{ '|' if loop.first }}{% endfor %}"));
        Assert.Equal("odd even odd ", Render("{% for i in range(3) %}{{ loop.cycle('odd', 'even') }} {% endfor %}"));
    }

    [Fact]
    public void ScopingAndNamespace()
    {
        // A set inside a loop lives for one iteration; namespace() carries state out.
        Assert.Equal("5,,,|outer", Render("{% set v = 'outer' %}{% for i in [1, 2, 3] %}{% if i == 1 %}{% set x = 5 %}{% set v = 'in' %}{% endif %}{{ x }},{% endfor %}|{{ v }}"));
        Assert.Equal("3", Render("{% set ns = namespace(n=0) %}{% for i in [1, 2, 3] %}{% set ns.n = ns.n + 1 %}{% endfor %}{{ ns.n }}"));
        Assert.Equal("2", Render("{% set y = 1 %}{% if true %}{% set y = 2 %}{% endif %}{{ y }}"));
        Assert.Equal("AB", Render("{% set a, b = ['A', 'B'] %}{{ a }}{{ b }}"));
        Assert.Equal("<b>X</b>", Render("{% set t %}<b>{{ 'x' | upper }}</b>{% endset %}{{ t }}"));
        Assert.Equal("HI THERE", Render("{% filter upper %}hi {{ 'there' }}{% endfilter %}"));
        Assert.Contains("non-namespace", Fails("{% set d = {} %}{% set d.x = 1 %}").Problem);
    }

    [Fact]
    public void MacrosAndCallBlocks()
    {
        Assert.Equal("[a|B][c|d]", Render("{% macro m(x, y='B') %}[{{ x }}|{{ y }}]{% endmacro %}{{ m('a') }}{{ m(y='d', x='c') }}"));
        Assert.Equal("(1,)2", Render("{% macro m() %}{{ varargs }}{{ kwargs.k }}{% endmacro %}{{ m(1, k=2) }}"));
        Assert.Equal("<p>inner 7</p>", Render("{% macro wrap() %}<p>{{ caller(7) }}</p>{% endmacro %}{% call(n) wrap() %}inner {{ n }}{% endcall %}"));
        Assert.Contains("takes not more than 1 argument(s)", Fails("{% macro m(a) %}{% endmacro %}{{ m(1, 2) }}").Problem);
        Assert.Contains("no keyword argument 'z'", Fails("{% macro m(a) %}{% endmacro %}{{ m(z=1) }}").Problem);
    }

    [Fact]
    public void FiltersTestsAndMethods()
    {
        Assert.Equal("Hello world|Hello World-X (Y)|It'S|  x|ab|None", Render(
            "{{ 'hELLO wORLD' | capitalize }}|{{ 'hello wORLD-x (y)' | title }}|{{ \"it's\".title() }}|{{ 'x' | indent(2, true) }}|{{ ['a', 'b'] | join }}|{{ none | default('d') }}"));
        Assert.Equal("['a', 'b']|2|b=2;a=1|1", Render(
            "{{ d | list }}|{{ d | length }}|{% for k, v in d | dictsort(reverse=true) %}{{ k }}={{ v }}{{ ';' if not loop.last }}{% endfor %}|{{ d.get('a') }}",
            ("d", new Dictionary<string, object?> { ["a"] = 1, ["b"] = 2 })));
        Assert.Equal("x,z|y", Render(
            "{{ items | selectattr('on') | map(attribute='n') | join(',') }}|{{ items | rejectattr('on') | map(attribute='n') | first }}",
            ("items", new[]
            {
                new Dictionary<string, object?> { ["n"] = "x", ["on"] = true },
                new Dictionary<string, object?> { ["n"] = "y", ["on"] = false },
                new Dictionary<string, object?> { ["n"] = "z", ["on"] = 1 },
            })));
        Assert.Equal("['a', 'b c']|['a', 'b', 'c']|bc|a", Render("{{ 'a b c'.split(' ', 1) }}|{{ ' a  b c '.split() }}|{{ 'abc'[1:] }}|{{ 'a-'.rstrip('-') }}"));
        Assert.Equal("yes no yes", Render("{{ 'yes' if x is string else 'no' }} {{ 'yes' if x is number else 'no' }} {{ 'yes' if 4 is divisibleby 2 else 'no' }}", ("x", "s")));
        Assert.Contains("no filter named 'frobnicate'", Fails("{{ 1 | frobnicate }}").Problem);
        Assert.Contains("no test named 'frobbed'", Fails("{{ 1 is frobbed }}").Problem);
    }

    [Fact]
    public void TojsonMatchesTransformers()
    {
        Assert.Equal("{\"a\": [1, 2.5, \"é\\n\\\"\"], \"b\": null, \"c\": true}",
            Render("{{ {'a': [1, 2.5, 'é\\n\"'], 'b': none, 'c': true} | tojson }}"));
        Assert.Equal("{\n  \"a\": [\n    1\n  ],\n  \"b\": {}\n}", Render("{{ {'a': [1], 'b': {}} | tojson(indent=2) }}"));
        Assert.Equal("{\"a\":\"\\u00e9\",\"b\":1}", Render("{{ {'b': 1, 'a': 'é'} | tojson(ensure_ascii=true, sort_keys=true, separators=(',', ':')) }}"));
        Assert.Contains("not JSON serializable", Fails("{{ missing | tojson }}").Problem);
    }

    [Fact]
    public void UndefinedIsLenientUntilUsed()
    {
        Assert.Equal("[]0|c", Render("[{{ missing }}]{{ missing | length }}{% for x in missing %}x{% endfor %}|{{ missing ~ 'c' }}{{ {}.b }}"));
        TemplateException e = Fails("line one\n{{ 'ok' }} {{ missing.attribute }}");
        Assert.Equal("'missing' is undefined", e.Problem);
        Assert.Equal((2, 23), (e.Line, e.Column)); // at the attribute access: column of "attribute"
        Assert.Equal("chat template 'test', line 2, column 23: 'missing' is undefined", e.Message);
        Assert.Contains("'dict object' has no attribute 'x'", Fails("{{ d.x.y }}", ("d", new Dictionary<string, object?>())).Problem);
        Assert.Contains("immutable sandbox", Fails("{{ [1].append(2) }}").Problem);
    }

    [Fact]
    public void RaiseExceptionIsATemplateExceptionWithTheMessage()
    {
        TemplateException e = Fails("{% if true %}\n  {{ raise_exception('Only user and assistant roles are supported!') }}\n{% endif %}");
        Assert.True(e.RaisedByTemplate);
        Assert.Equal("Only user and assistant roles are supported!", e.Problem);
        Assert.Equal(2, e.Line);
    }

    [Theory]
    [InlineData("{% if x %}never closed", 1, 23, "unexpected end of template, expected 'elif' or 'else' or 'endif'")]
    [InlineData("{% for x in y %}{% endif %}", 1, 20, "unexpected 'endif', expected 'endfor' or 'else'")]
    [InlineData("ok\n{% frobnicate %}", 2, 4, "unknown tag 'frobnicate'")]
    [InlineData("{{ 'unterminated }}", 1, 4, "unterminated string literal")]
    [InlineData("a\nb {{ x ", 2, 3, "unclosed '{{': missing '}}'")]
    [InlineData("{{ (1, 2] }}", 1, 9, "unexpected ']', expected ')'")]
    [InlineData("{% break %}", 1, 4, "'break' outside of a loop")]
    [InlineData("{{ x | }}", 1, 8, "expected a name, got '}}'")]
    [InlineData("{# never closed", 1, 1, "unclosed comment")]
    [InlineData("{% endfor %}", 1, 4, "unexpected 'endfor': no open block to end")]
    public void SyntaxErrorsNameLineAndColumn(string template, int line, int column, string problem)
    {
        var e = Assert.Throws<TemplateException>(() => JinjaTemplate.Parse(template, "bad"));
        Assert.StartsWith(problem, e.Problem);
        Assert.Equal((line, column), (e.Line, e.Column));
        Assert.Equal("bad", e.TemplateName);
    }

    [Fact]
    public void DictLiteralsInsideExpressionsDoNotEndTheTag() =>
        Assert.Equal("{'a': {'b': {'c': 1}}}|1", Render("{{ {'a': {'b': {'c': 1}}} }}|{{ {'a': {'b': 1}}['a']['b'] }}"));

    [Fact]
    public void GenerationTagRendersItsBody() =>
        Assert.Equal("[a][b]", Render("{% for m in ms %}{% generation %}[{{ m }}]{% endgeneration %}{% endfor %}", ("ms", new[] { "a", "b" })));
}
