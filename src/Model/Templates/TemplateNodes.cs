namespace LlavaNative.Model.Templates;

// The syntax tree of a template. Every node keeps the source offset of its first token so that an error at
// render time can name the line and column. Statements render text; expressions evaluate to a TemplateValue.

internal abstract record Node(int Offset);

// ---- statements ----

internal sealed record TextNode(int Offset, string Text) : Node(Offset);

/// <summary><c>{{ expression }}</c></summary>
internal sealed record OutputNode(int Offset, Expr Value) : Node(Offset);

/// <summary><c>{% if %}…{% elif %}…{% else %}…{% endif %}</c>: the branches in order, then the else body.</summary>
internal sealed record IfNode(int Offset, IReadOnlyList<(Expr Test, IReadOnlyList<Node> Body)> Branches, IReadOnlyList<Node> Else) : Node(Offset);

/// <summary><c>{% for target in iterable if filter %}…{% else %}…{% endfor %}</c></summary>
internal sealed record ForNode(int Offset, Expr Target, Expr Iterable, Expr? Filter, IReadOnlyList<Node> Body, IReadOnlyList<Node> Else) : Node(Offset);

/// <summary><c>{% set target = value %}</c>; target is a name, a tuple of names, or <c>namespace.attribute</c>.</summary>
internal sealed record SetNode(int Offset, Expr Target, Expr Value) : Node(Offset);

/// <summary><c>{% set target | filters %}…{% endset %}</c>: the rendered body, passed through the filters.</summary>
internal sealed record SetBlockNode(int Offset, Expr Target, IReadOnlyList<FilterExpr> Filters, IReadOnlyList<Node> Body) : Node(Offset);

internal sealed record MacroParameter(string Name, Expr? Default);

/// <summary><c>{% macro name(a, b=1) %}…{% endmacro %}</c></summary>
internal sealed record MacroNode(int Offset, string Name, IReadOnlyList<MacroParameter> Parameters, IReadOnlyList<Node> Body) : Node(Offset);

/// <summary><c>{% call(args) macro(...) %}…{% endcall %}</c>: the body becomes <c>caller()</c> inside the macro.</summary>
internal sealed record CallBlockNode(int Offset, CallExpr Call, IReadOnlyList<MacroParameter> CallerParameters, IReadOnlyList<Node> Body) : Node(Offset);

/// <summary><c>{% filter name(args) %}…{% endfilter %}</c></summary>
internal sealed record FilterBlockNode(int Offset, IReadOnlyList<FilterExpr> Filters, IReadOnlyList<Node> Body) : Node(Offset);

/// <summary>transformers' <c>{% generation %}…{% endgeneration %}</c>: marks assistant text; renders its body unchanged.</summary>
internal sealed record GenerationNode(int Offset, IReadOnlyList<Node> Body) : Node(Offset);

internal sealed record BreakNode(int Offset) : Node(Offset);
internal sealed record ContinueNode(int Offset) : Node(Offset);

// ---- expressions ----

internal abstract record Expr(int Offset) : Node(Offset);

internal sealed record ConstExpr(int Offset, TemplateValue Value) : Expr(Offset);
internal sealed record NameExpr(int Offset, string Name) : Expr(Offset);
internal sealed record ListExpr(int Offset, IReadOnlyList<Expr> Items) : Expr(Offset);
internal sealed record TupleExpr(int Offset, IReadOnlyList<Expr> Items) : Expr(Offset);
internal sealed record DictExpr(int Offset, IReadOnlyList<(Expr Key, Expr Value)> Items) : Expr(Offset);

/// <summary><c>object.name</c></summary>
internal sealed record GetAttrExpr(int Offset, Expr Object, string Name) : Expr(Offset);

/// <summary><c>object[key]</c></summary>
internal sealed record GetItemExpr(int Offset, Expr Object, Expr Key) : Expr(Offset);

/// <summary><c>object[start:stop:step]</c></summary>
internal sealed record SliceExpr(int Offset, Expr Object, Expr? Start, Expr? Stop, Expr? Step) : Expr(Offset);

internal sealed record Arguments(IReadOnlyList<Expr> Positional, IReadOnlyList<(string Name, Expr Value)> Keyword, Expr? StarArgs, Expr? StarStarKwargs)
{
    public static readonly Arguments None = new([], [], null, null);
}

internal sealed record CallExpr(int Offset, Expr Callee, Arguments Args) : Expr(Offset);

/// <summary><c>operand | name(args)</c></summary>
internal sealed record FilterExpr(int Offset, Expr? Operand, string Name, Arguments Args) : Expr(Offset);

/// <summary><c>operand is [not] name(args)</c></summary>
internal sealed record TestExpr(int Offset, Expr Operand, string Name, Arguments Args, bool Negated) : Expr(Offset);

/// <summary>Unary <c>-</c>, <c>+</c>, <c>not</c>.</summary>
internal sealed record UnaryExpr(int Offset, string Operator, Expr Operand) : Expr(Offset);

/// <summary>Arithmetic <c>+ - * / // % **</c> and the short-circuit <c>and</c>/<c>or</c>.</summary>
internal sealed record BinaryExpr(int Offset, string Operator, Expr Left, Expr Right) : Expr(Offset);

/// <summary><c>a ~ b ~ c</c>: string concatenation of each operand's str().</summary>
internal sealed record ConcatExpr(int Offset, IReadOnlyList<Expr> Parts) : Expr(Offset);

/// <summary>Chained comparison <c>a &lt; b == c</c>, <c>a in b</c>, <c>a not in b</c>.</summary>
internal sealed record CompareExpr(int Offset, Expr First, IReadOnlyList<(string Operator, Expr Operand)> Rest) : Expr(Offset);

/// <summary><c>then if test else otherwise</c>; without <c>else</c> the false case is undefined.</summary>
internal sealed record CondExpr(int Offset, Expr Test, Expr Then, Expr? Otherwise) : Expr(Offset);
