using System.Text.Json.Nodes;
using LlavaNative.Model.Templates;

namespace LlavaNative.Reference.Tests.Templates;

/// <summary>One rendering to compare: a template, the variables, and which references must agree with it.</summary>
/// <param name="RenderOurs">How LlavaNative renders the case; null: <see cref="JinjaTemplate"/> on <paramref name="Context"/>.</param>
public sealed record TemplateCase(string Id, string Template, JsonObject Context, bool CompareWithHuggingFaceJinja = true, Func<string>? RenderOurs = null);

/// <summary>
/// Conversations and templates the agreement tests render. The "real-world-shaped" templates are written for
/// these tests in the style of published chat templates (tool calling with tojson, namespace counters,
/// role-alternation checks with raise_exception, Llama-3-style headers); none is copied from a checkpoint.
/// </summary>
public static class TemplateCorpus
{
    public static readonly (string Name, ChatMessage[] Messages, bool AddGenerationPrompt)[] Conversations =
    [
        ("single-turn", [ChatMessage.User("What is this?", images: 1)], true),
        ("multi-turn", [ChatMessage.User("What is in the image?", 1), ChatMessage.Assistant("A cat on a sofa."), ChatMessage.User("What colour is it?")], true),
        ("system-message", [ChatMessage.System("You are a careful assistant."), ChatMessage.User("Describe the picture.", 1)], true),
        ("image-listed-after-text", [ChatMessage.FromParts("user", [ChatContentPart.FromText("Look at this:"), ChatContentPart.Image])], true),
        ("multiple-images", [ChatMessage.User("Compare these.", 2)], true),
        ("images-in-two-turns", [ChatMessage.User("First picture.", 1), ChatMessage.Assistant("A dog."), ChatMessage.User("And this one?", 1)], true),
        ("ends-with-assistant", [ChatMessage.User("Hi"), ChatMessage.Assistant("Hello! How can I help?")], false),
        ("string-content", [ChatMessage.FromText("user", "Hello"), ChatMessage.FromText("assistant", "Hi there"), ChatMessage.FromText("user", "Tell me a joke.")], true),
        ("string-system", [ChatMessage.FromText("system", "Be brief."), ChatMessage.FromText("user", "Why is the sky blue?"), ChatMessage.FromText("assistant", "Rayleigh scattering."), ChatMessage.FromText("user", "And sunsets?")], true),
        ("text-parts-around-image", [ChatMessage.FromParts("user", [ChatContentPart.FromText("Before."), ChatContentPart.Image, ChatContentPart.FromText("After.")])], true),
        ("unicode-and-escapes", [ChatMessage.User("Quotes ' \" back\\slash, tab\t, newline\nline 2, emoji 😀, 中文, Ünïcödé, {{ not a tag }} {% nor this %}", 1)], true),
        ("padded-text", [ChatMessage.User("  spaced out  ", 1), ChatMessage.Assistant("  reply with spaces  "), ChatMessage.User("\tnext\n")], true),
        ("roles-not-alternating", [ChatMessage.User("one"), ChatMessage.User("two")], true),
        ("tool-role", [ChatMessage.User("Weather?"), ChatMessage.FromText("tool", "{\"temp\": 21}")], true),
        ("empty", [], true),
    ];

    public static JsonObject ToJson(ChatMessage message)
    {
        var json = new JsonObject { ["role"] = message.Role };
        if (message.Text is not null) json["content"] = message.Text;
        else
        {
            var parts = new JsonArray();
            foreach (ChatContentPart p in message.Parts!)
            {
                var part = new JsonObject { ["type"] = p.Type };
                if (p.Text is not null) part["text"] = p.Text;
                parts.Add(part);
            }
            json["content"] = parts;
        }
        return json;
    }

    public static JsonObject Context(ChatMessage[] messages, bool addGenerationPrompt)
    {
        var list = new JsonArray();
        foreach (ChatMessage m in messages) list.Add(ToJson(m));
        return new JsonObject { ["messages"] = list, ["add_generation_prompt"] = addGenerationPrompt, ["bos_token"] = "<s>", ["eos_token"] = "</s>" };
    }

    public static IEnumerable<TemplateCase> BuiltInCases()
    {
        foreach (string name in new[] { "llava-1.5", "llava-interleave", "vicuna-v1", "llama-2" })
        {
            BuiltInChatTemplates.TryGetSource(name, out _, out string source);
            foreach (var (conversation, messages, generation) in Conversations)
            {
                // Ours goes through the public API: ChatTemplate + ChatMessage objects, not the JSON the references get.
                string Ours(bool addGenerationPrompt) => ChatTemplate.BuiltIn(name).RenderExactly(messages,
                    new ChatTemplateOptions { AddGenerationPrompt = addGenerationPrompt, BosToken = "<s>", EosToken = "</s>" });
                yield return new TemplateCase($"{name}/{conversation}", source, Context(messages, generation), RenderOurs: () => Ours(generation));
                if (generation)
                    yield return new TemplateCase($"{name}/{conversation}/no-generation-prompt", source, Context(messages, false), RenderOurs: () => Ours(false));
            }
        }
    }

    // ------------------------------------------------------------------ real-world-shaped templates

    public const string ToolCallingChatml = """
        {%- if tools %}
            {{- '<|im_start|>system\n' }}
            {%- if messages[0]['role'] == 'system' %}
                {{- messages[0]['content'] }}
            {%- else %}
                {{- 'You are a helpful assistant.' }}
            {%- endif %}
            {{- "\n\n# Tools\n\nYou may call one or more functions to assist with the user query.\n\n<tools>" }}
            {%- for tool in tools %}
                {{- "\n" }}
                {{- tool | tojson }}
            {%- endfor %}
            {{- "\n</tools>\n\nFor each call, return a JSON object inside <tool_call></tool_call> tags.<|im_end|>\n" }}
        {%- elif messages[0]['role'] == 'system' %}
            {{- '<|im_start|>system\n' + messages[0]['content'] + '<|im_end|>\n' }}
        {%- endif %}
        {%- set ns = namespace(last_user=-1, calls=0) %}
        {%- for message in messages %}
            {%- if message.role == 'user' %}{% set ns.last_user = loop.index0 %}{% endif %}
        {%- endfor %}
        {%- for message in messages %}
            {%- if message.role == "user" or (message.role == "system" and not loop.first) %}
                {{- '<|im_start|>' + message.role + '\n' + message.content + '<|im_end|>' + '\n' }}
            {%- elif message.role == "assistant" %}
                {{- '<|im_start|>' + message.role }}
                {%- if message.content %}
                    {{- '\n' + message.content }}
                {%- endif %}
                {%- for tool_call in message.tool_calls | default([]) %}
                    {%- set ns.calls = ns.calls + 1 %}
                    {%- if tool_call.function is defined %}
                        {%- set tool_call = tool_call.function %}
                    {%- endif %}
                    {{- '\n<tool_call>\n{"name": "' }}
                    {{- tool_call.name }}
                    {{- '", "arguments": ' }}
                    {{- tool_call.arguments | tojson }}
                    {{- '}\n</tool_call>' }}
                {%- endfor %}
                {%- if loop.index0 > ns.last_user %}
                    {{- '\n(after the last user turn, call #' ~ ns.calls ~ ')' }}
                {%- endif %}
                {{- '<|im_end|>\n' }}
            {%- elif message.role == "tool" %}
                {%- if loop.first or (messages[loop.index0 - 1].role != "tool") %}
                    {{- '<|im_start|>user' }}
                {%- endif %}
                {{- '\n<tool_response>\n' }}
                {{- message.content if message.content is string else message.content | tojson }}
                {{- '\n</tool_response>' }}
                {%- if loop.last or (messages[loop.index0 + 1].role != "tool") %}
                    {{- '<|im_end|>\n' }}
                {%- endif %}
            {%- elif message.role != "system" %}
                {{- raise_exception('Unknown role: ' + message.role) }}
            {%- endif %}
        {%- endfor %}
        {%- if add_generation_prompt %}
            {{- '<|im_start|>assistant\n' }}
        {%- endif %}
        """;

    public const string Llama3Like = """
        {{- bos_token }}
        {%- if custom_tools is defined %}
            {%- set tools = custom_tools %}
        {%- endif %}
        {%- if not date_string is defined %}
            {%- set date_string = "26 Jul 2024" %}
        {%- endif %}
        {%- if messages[0]['role'] == 'system' %}
            {%- set system_message = messages[0]['content'] | trim %}
            {%- set messages = messages[1:] %}
        {%- else %}
            {%- set system_message = "" %}
        {%- endif %}
        {{- "<|start_header_id|>system<|end_header_id|>\n\n" }}
        {{- "Cutting Knowledge Date: December 2023\n" }}
        {{- "Today Date: " + date_string + "\n\n" }}
        {%- if tools is not none and tools is defined %}
            {{- "You have access to the following functions.\n\n" }}
            {%- for t in tools %}
                {{- t | tojson(indent=4) }}
                {{- "\n\n" }}
            {%- endfor %}
        {%- endif %}
        {{- system_message }}
        {{- "<|eot_id|>" }}
        {%- for message in messages %}
            {%- if not (message.role == 'ipython' or message.role == 'tool' or 'tool_calls' in message) %}
                {{- '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n' + message['content'] | trim + '<|eot_id|>' }}
            {%- elif 'tool_calls' in message %}
                {%- if not message.tool_calls | length == 1 %}
                    {{- raise_exception("This model only supports single tool-calls at once!") }}
                {%- endif %}
                {%- set tool_call = message.tool_calls[0].function %}
                {{- '<|start_header_id|>assistant<|end_header_id|>\n\n' -}}
                {{- '{"name": "' + tool_call.name + '", ' }}
                {{- '"parameters": ' }}
                {{- tool_call.arguments | tojson }}
                {{- "}" }}
                {{- "<|eot_id|>" }}
            {%- elif message.role == "tool" or message.role == "ipython" %}
                {{- "<|start_header_id|>ipython<|end_header_id|>\n\n" }}
                {%- if message.content is mapping or message.content is iterable %}
                    {{- message.content | tojson }}
                {%- else %}
                    {{- message.content }}
                {%- endif %}
                {{- "<|eot_id|>" }}
            {%- endif %}
        {%- endfor %}
        {%- if add_generation_prompt %}
            {{- '<|start_header_id|>assistant<|end_header_id|>\n\n' }}
        {%- endif %}
        """;

    public const string MistralLike = """
        {%- if messages[0]['role'] == 'system' %}
            {%- set system_message = messages[0]['content'] %}
            {%- set loop_messages = messages[1:] %}
        {%- else %}
            {%- set loop_messages = messages %}
        {%- endif %}

        {{- bos_token }}
        {%- for message in loop_messages %}
            {%- if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}
                {{- raise_exception('After the optional system message, conversation roles must alternate user/assistant/user/assistant/...') }}
            {%- endif %}
            {%- if message['role'] == 'user' %}
                {%- if loop.last and system_message is defined %}
                    {{- '[INST] ' + system_message + '\n\n' + message['content'].strip() + '[/INST]' }}
                {%- else %}
                    {{- '[INST] ' + message['content'].strip() + '[/INST]' }}
                {%- endif %}
            {%- elif message['role'] == 'assistant' %}
                {{- ' ' + message['content'].strip() + eos_token }}
            {%- else %}
                {{- raise_exception('Only user and assistant roles are supported, with the exception of an initial optional system message!') }}
            {%- endif %}
        {%- endfor %}
        """;

    /// <summary>Plain trim_blocks / lstrip_blocks layout: indented tags on their own lines, no '-' anywhere.</summary>
    public const string IndentedNoDashes = """
        {# A template laid out for reading: lstrip_blocks removes the indentation before tags,
           trim_blocks the newline after them. #}
        {% for message in messages %}
            {% if message.role == 'user' %}
        User: {{ message.content }}
            {% elif message.role == 'assistant' %}
        Assistant: {{ message.content }}
            {% else %}
        {{ message.role | upper }}: {{ message.content }}
            {% endif %}
        {% endfor %}
          {{ "  kept: indentation before an expression stays" }}
        {% if add_generation_prompt %}
        Assistant:{% endif %}
        """;

    /// <summary>Exercises the interpreter broadly; prints no booleans or floats (their str() differs between the references).</summary>
    public const string FeatureTour = """
        {#- macros, call blocks, namespace, loop variables, filters, tests, slicing, arithmetic -#}
        {%- macro render_content(content, image_token='<image>', sep=' ') -%}
            {%- if content is string -%}
                {{- content -}}
            {%- else -%}
                {%- for part in content -%}
                    {%- if part.type == 'image' -%}{{ image_token }}{%- elif part.type == 'text' -%}{{ part.text }}{%- endif -%}
                    {%- if not loop.last %}{{ sep }}{% endif -%}
                {%- endfor -%}
            {%- endif -%}
        {%- endmacro -%}
        {%- macro wrap(tag) -%}<{{ tag }}>{{ caller() }}</{{ tag }}>{%- endmacro -%}
        {%- set ns = namespace(images=0, turns=0, roles=[]) -%}
        {%- for message in messages -%}
            {%- set ns.turns = ns.turns + 1 -%}
            {%- set ns.roles = ns.roles + [message.role] -%}
            {%- if message.content is not string -%}
                {%- set ns.images = ns.images + (message.content | selectattr('type', 'equalto', 'image') | list | length) -%}
            {%- endif -%}
        {%- endfor -%}
        turns={{ ns.turns }} images={{ ns.images }} roles={{ ns.roles | join(',') }} unique={{ ns.roles | unique | join('/') }}
        {% for message in messages if message.role != 'system' -%}
        [{{ loop.index }}/{{ loop.length }} i0={{ loop.index0 }} r={{ loop.revindex }} r0={{ loop.revindex0 }}{{ ' first' if loop.first }}{{ ' last' if loop.last }}] {{ message.role | upper }}: {{ render_content(message.content, sep='|') }}
        {% else -%}
        (no messages)
        {% endfor -%}
        {% call wrap('summary') %}{{ messages | length }} messages{% if messages %}, first role {{ (messages | first).role | title }}, last role {{ (messages | last)['role'] | capitalize }}{% endif %}{% endcall %}

        {% set header %}Roles: {% for r in ns.roles | sort %}{{ r }}{{ ', ' if not loop.last }}{% endfor %}{% endset -%}
        {{ header | trim }}
        {{ '  padded  ' | trim }}|{{ 'a-b-c' | replace('-', '+') }}|{{ 'Hello World'.lower() }}|{{ 'Hello'.upper() }}|{{ 'x,y,,z'.split(',') | length }}|{{ '  a b  c '.split() | join('_') }}|{{ 'k=v=w'.split('=', 1) | last }}
        {{ 'abcdef'[1:4] }}|{{ 'abcdef'[::-1] }}|{{ 'abcdef'[-2:] }}|{{ [1, 2, 3, 4, 5][-2:] | join(',') }}|{{ [1, 2, 3, 4, 5][::2] | join(',') }}|{{ [1, 2, 3][1] }}
        {{ 7 // 2 }} {{ -7 // 2 }} {{ 7 % 3 }} {{ 2 ** 8 }} {{ 3 * 4 - 1 }} {{ (1 + 2) * 3 }} {{ 10 - 2 - 3 }} {{ 'n' ~ 1 ~ 2 }}
        {{ 'yes' if 'cat' in 'concatenate' else 'no' }} {{ 'yes' if 'b' not in ['a', 'c'] else 'no' }} {{ 'yes' if 2 in [1, 2] else 'no' }} {{ 'yes' if 'k' in {'k': 1} else 'no' }}
        {{ 'defined' if messages is defined else 'undefined' }} {{ 'defined' if nothing is defined else 'undefined' }} {{ 'none' if maybe is none else 'not none' }} {{ 'string' if 'x' is string else 'other' }} {{ 'mapping' if meta is mapping else 'other' }}
        {{ nothing | default('fallback') }}|{{ '' | default('empty', true) }}|{{ meta.get('missing', 'dflt') }}|{{ meta.get('name') }}|{{ meta['name'] }}|{{ meta.name }}|{{ '41' | int + 1 }}|{{ 12 | string ~ 'x' }}
        {% for key, value in meta.items() %}{{ key }}={{ value }}{{ ';' if not loop.last }}{% endfor %}|{% for key in meta %}{{ key }}{% endfor %}|{% for pair in meta | dictsort %}{{ pair[0] }}{% endfor %}|{{ meta.keys() | list | length }}|{% for k, v in meta | items %}{{ k }}{% endfor %}
        {{ tools | map(attribute='function.name') | join(', ') }}|{{ tools | selectattr('type', 'equalto', 'function') | list | length }}|{{ messages | rejectattr('role', 'equalto', 'user') | map(attribute='role') | join(',') }}
        {{ messages | map(attribute='role') | join('>') }}|{{ messages | selectattr('role', 'equalto', 'user') | list | length }}|{{ [3, 1, 2] | sort | join }}|{{ ['b', 'a', 'B'] | sort | join }}|{{ [1, 2, 3] | reverse | join }}|{{ [[1, 2], [3]] | first | length }}
        {{ 'line one\nline two\n\nline four' | indent(2) }}
        {{ 'first\nsecond' | indent(4, true) }}
        {% for i in range(10) %}{% if i == 2 %}{% continue %}{% endif %}{% if i > 5 %}{% break %}{% endif %}{{ i }}{% endfor %}|{% for i in range(1, 10, 3) %}{{ i }},{% endfor %}|{% for i in range(3) if i != 1 %}{{ loop.index }}:{{ i }} {% endfor %}
        {% set a, b = 'A', 'B' %}{{ a }}{{ b }}|{% set outer = 'before' %}{% for i in [1] %}{% set outer = 'inside' %}{% endfor %}{{ outer }}|{{ meta | tojson }}|{{ {'nested': {'list': [1, 'two', none, true]}, 'quote': "say \"hi\"\n"} | tojson }}
        {{ tools[0] | tojson(indent=2) }}
        {{- '\nToday: ' + strftime_now('%Y-%m-%d') if show_date else '' }}
        """;

    public static readonly string ToolConversationJson = """
        {
          "tools": [
            {"type": "function", "function": {"name": "get_weather", "description": "Weather for a city, in \"°C\".",
              "parameters": {"type": "object", "properties": {"city": {"type": "string", "description": "City name, e.g. Zürich"},
                "days": {"type": "integer", "enum": [1, 3, 7]}}, "required": ["city"]}}},
            {"type": "function", "function": {"name": "search", "description": "Web search\nwith a newline",
              "parameters": {"type": "object", "properties": {"query": {"type": "string"}}, "required": ["query"], "strict": true, "extra": null}}}
          ],
          "messages": [
            {"role": "system", "content": "You are a tool-using assistant."},
            {"role": "user", "content": "What's the weather in Zürich and Köln?"},
            {"role": "assistant", "content": "", "tool_calls": [
              {"type": "function", "function": {"name": "get_weather", "arguments": {"city": "Zürich", "days": 3}}},
              {"type": "function", "function": {"name": "get_weather", "arguments": {"city": "Köln"}}}]},
            {"role": "tool", "content": "{\"temp\": 21, \"sky\": \"clear\"}"},
            {"role": "tool", "content": {"temp": 17, "sky": "rain ☔"}},
            {"role": "assistant", "content": "Zürich: 21 °C, clear. Köln: 17 °C, rain."},
            {"role": "user", "content": "Thanks! 谢谢"}
          ],
          "add_generation_prompt": true, "bos_token": "<s>", "eos_token": "</s>"
        }
        """;

    public static IEnumerable<TemplateCase> RealWorldCases()
    {
        JsonObject tools = JsonNode.Parse(ToolConversationJson)!.AsObject();
        JsonObject WithoutTools()
        {
            var c = (JsonObject)tools.DeepClone();
            c.Remove("tools");
            return c;
        }
        JsonObject SingleToolCall()
        {
            var c = (JsonObject)tools.DeepClone();
            var messages = c["messages"]!.AsArray();
            messages[2]!["tool_calls"]!.AsArray().RemoveAt(1);
            messages.RemoveAt(4);
            return c;
        }
        JsonObject UnknownRole()
        {
            var c = WithoutTools();
            c["messages"]!.AsArray().Add(new JsonObject { ["role"] = "narrator", ["content"] = "Meanwhile..." });
            return c;
        }
        JsonObject Chat(params (string Role, string Content)[] turns)
        {
            var list = new JsonArray();
            foreach (var (role, content) in turns) list.Add(new JsonObject { ["role"] = role, ["content"] = content });
            return new JsonObject { ["messages"] = list, ["add_generation_prompt"] = true, ["bos_token"] = "<s>", ["eos_token"] = "</s>" };
        }
        var simple = Chat(("system", "Answer in one word."), ("user", "  Capital of France?  "), ("assistant", " Paris "), ("user", "And of Italy?"));
        var noSystem = Chat(("user", "Hello"), ("assistant", "Hi"), ("user", "Bye"));
        var notAlternating = Chat(("user", "a"), ("assistant", "b"), ("assistant", "c"));

        yield return new TemplateCase("tool-calling-chatml/tools", ToolCallingChatml, tools);
        yield return new TemplateCase("tool-calling-chatml/no-tools", ToolCallingChatml, WithoutTools());
        yield return new TemplateCase("tool-calling-chatml/plain-chat", ToolCallingChatml, simple);
        yield return new TemplateCase("tool-calling-chatml/unknown-role", ToolCallingChatml, UnknownRole());
        yield return new TemplateCase("llama-3-like/single-tool-call", Llama3Like, SingleToolCall());
        yield return new TemplateCase("llama-3-like/two-tool-calls", Llama3Like, tools);
        yield return new TemplateCase("llama-3-like/plain-chat", Llama3Like, simple);
        yield return new TemplateCase("llama-3-like/no-system", Llama3Like, noSystem);
        yield return new TemplateCase("mistral-like/system", MistralLike, simple);
        yield return new TemplateCase("mistral-like/no-system", MistralLike, noSystem);
        yield return new TemplateCase("mistral-like/not-alternating", MistralLike, notAlternating);
        yield return new TemplateCase("indented-no-dashes/chat", IndentedNoDashes, simple);
        yield return new TemplateCase("indented-no-dashes/no-generation-prompt", IndentedNoDashes, SetFlag(noSystem, "add_generation_prompt", false));

        foreach (var (name, messages, generation) in Conversations.Where(c => c.Name is "multi-turn" or "string-system" or "text-parts-around-image" or "empty" or "unicode-and-escapes"))
        {
            JsonObject context = Context(messages, generation);
            context["meta"] = new JsonObject { ["name"] = "tour", ["version"] = 3, ["lang"] = "en" };
            context["tools"] = tools["tools"]!.DeepClone();
            context["maybe"] = null;
            context["show_date"] = name == "multi-turn";
            yield return new TemplateCase($"feature-tour/{name}", FeatureTour, context);
        }
    }

    private static JsonObject SetFlag(JsonObject context, string name, bool value)
    {
        var c = (JsonObject)context.DeepClone();
        c[name] = value;
        return c;
    }

    // ------------------------------------------------------------------ published templates

    /// <summary>
    /// The real chat templates llama.cpp keeps for its own tests (models/templates/*.jinja in the installed
    /// reference tree, read at run time, not copied here), each with a plain chat, a chat without system message,
    /// and a tool-calling conversation.
    /// </summary>
    public static IEnumerable<TemplateCase> PublishedCases()
    {
        string folder = Path.Combine(LlavaNative.TestSupport.ReferencePaths.LlamaCppSource, "models", "templates");
        JsonObject tools = JsonNode.Parse(ToolConversationJson)!.AsObject();
        JsonObject Chat(params (string Role, string Content)[] turns)
        {
            var list = new JsonArray();
            foreach (var (role, content) in turns) list.Add(new JsonObject { ["role"] = role, ["content"] = content });
            return new JsonObject { ["messages"] = list, ["add_generation_prompt"] = true, ["bos_token"] = "<s>", ["eos_token"] = "</s>" };
        }
        var chat = Chat(("system", "You are terse."), ("user", "Hi there!"), ("assistant", "Hello."), ("user", "What's 2+2?"));
        var noSystem = Chat(("user", "Describe this picture of a café."));
        foreach (string file in Directory.GetFiles(folder, "*.jinja").Order(StringComparer.Ordinal))
        {
            string name = Path.GetFileNameWithoutExtension(file);
            string template = File.ReadAllText(file);
            yield return new TemplateCase($"published/{name}/chat", template, chat);
            yield return new TemplateCase($"published/{name}/no-system", template, noSystem);
            yield return new TemplateCase($"published/{name}/tools", template, tools);
        }
    }

    // ------------------------------------------------------------------ Python semantics

    /// <summary>
    /// Where @huggingface/jinja departs from Python's Jinja2 (str() of booleans, None and containers, float repr,
    /// capitalize/title, int() of negative floats, raw blocks, '+' whitespace control, loop scoping, macro
    /// argument checks, sort_keys order): compared with Python's Jinja2 only, since transformers renders with it.
    /// </summary>
    public static IEnumerable<TemplateCase> PythonSemanticsCases()
    {
        JsonObject Vars(string json = "{}") => JsonNode.Parse(json)!.AsObject();
        (string, string)[] templates =
        [
            ("str-of-values", "{{ true }} {{ false }} {{ none }} {{ [1, 'a', none, true] }} {{ {'k': [1, 2], 'q': \"it's\"} }} {{ (1,) }} {{ (1, 2) }} {{ [] }} {{ {} }}"),
            ("float-repr", "{{ 1.0 }} {{ 1e16 }} {{ 1e15 }} {{ 0.0001 }} {{ 0.00001 }} {{ 1/3 }} {{ 10/4 }} {{ 4/2 }} {{ 2.5e-10 }} {{ 123456789.125 }} {{ -0.5 }} {{ 1.5 * 2 }}"),
            ("string-repr", "{{ [\"it's\", 'say \"hi\"', 'both \\' \"', 'tab\\there', 'nl\\n', 'é😀'] }}"),
            ("capitalize-title", "{{ 'hELLO wORLD' | capitalize }}|{{ \"it's a dog's-life (really) [yes] <ok>\" | title }}|{{ \"it's 1st\".title() }}|{{ 'hELLO'.capitalize() }}|{{ 'Hello'.swapcase() }}"),
            ("int-float-filters", "{{ -7.5 | int }} {{ 7.9 | int }} {{ '  42 ' | int }} {{ '4.7' | int }} {{ 'x' | int(5) }} {{ '0x1A' | int(0, 16) }} {{ '3' | float }} {{ 'x' | float }} {{ true | int }}"),
            ("raw-block", "{% raw %}{{ not rendered }} {% if %}{% endraw %}|{%- raw -%}  {{ x }}  {%- endraw -%}|"),
            ("plus-whitespace-control", "a\n    {%+ if true %}x{% endif +%}\nb\n  {% if true %}y{% endif %}\nc"),
            ("loop-scoping", "{% for i in [1, 2, 3] %}{% if i == 1 %}{% set x = 5 %}{% endif %}{{ x }},{% endfor %}|{% set y = 1 %}{% if true %}{% set y = 2 %}{% endif %}{{ y }}"),
            ("macro-arguments", "{% macro m(a, b='B') %}{{ a }}{{ b }}{{ varargs }}{{ kwargs }}{% endmacro %}{{ m(1) }}|{{ m(1, 2, 3, k='v') }}|{{ m(b='x', a='y') }}"),
            ("macro-too-many-arguments", "{% macro m(a) %}{{ a }}{% endmacro %}{{ m(1, 2) }}"),
            ("tojson-python", "{{ {'b': 1.0, 'a': 0.5, 'c': 1e-07, 'd': [1.5e300]} | tojson }}|{{ {'b': 'é', 'a': '😀', 'C': 'x'} | tojson(ensure_ascii=true, sort_keys=true) }}|{{ [1, [2, {}], []] | tojson(indent=2) }}|{{ {'a': 1} | tojson(separators=(',', ':')) }}|{{ 'ctl\\x01\\x7f' | tojson }}"),
            ("undefined-attribute", "{{ missing.attribute }}"),
            ("undefined-ok", "[{{ missing }}]{{ missing | length }}{% for x in missing %}x{% endfor %}{{ missing is defined }}{{ missing ~ 'c' }}{{ {'a': 1}.b }}{{ [1][5] }}"),
            ("string-plus-int", "{{ 'a' + 1 }}"),
            ("modulo-signs", "{{ -7 % 3 }} {{ 7 % -3 }} {{ -7.5 % 2 }} {{ -7 // 2 }} {{ 7.5 // 2 }}"),
            ("repetition-and-concat", "{{ 'ab' * 3 }}|{{ [1] * 3 }}|{{ 2 * 3 ~ 4 }}|{{ 'x' ~ none ~ true }}"),
            ("python-methods", "{{ 'a\\tb  c'.split() }}{{ 'a,b,,c'.split(',', 2) }}{{ 'a b c'.rsplit(' ', 1) }}{{ 'xxhixx'.strip('x') }}{{ 'hello'.replace('l', 'L', 1) }}{{ 'abc'.find('c') }}{{ 'hi'.startswith(('x', 'h')) }}{{ 'a\\nb\\r\\nc'.splitlines() }}{{ '-'.join(['a', 'b']) }}"),
            ("globals", "{{ range(3) | list }}{{ range(5, 0, -2) | list }}{{ dict(a=1, b='x') }}{{ namespace(x=1).x }}{% set j = joiner('+') %}{% for i in [1, 2, 3] %}{{ j() }}{{ i }}{% endfor %}"),
            ("tests", "{{ 1 is number }}{{ true is number }}{{ true is integer }}{{ 1.0 is float }}{{ 'a' is sequence }}{{ {} is iterable }}{{ 4 is divisibleby 2 }}{{ 3 is odd }}{{ 'ab' is lower }}{{ none is sameas none }}{{ 2 is in [1, 2] }}{{ 'upper' is filter }}{{ 'odd' is test }}{{ 1 is eq 1 }}{{ 2 is gt 1 }}"),
            ("comparison-chains", "{{ 1 < 2 < 3 }}{{ 1 < 3 < 2 }}{{ 1 == 1.0 }}{{ true == 1 }}{{ [1, 2] == (1, 2) }}{{ 'a' < 'b' }}{{ [1, 2] < [1, 3] }}"),
            ("filters-python", "{{ [3, 1, 2] | sort(reverse=true) }}{{ ['b', 'A', 'a'] | sort(case_sensitive=true) }}{{ ['a', 'A', 'b'] | unique | list }}{{ [1, 5, 3] | max }}{{ ['b', 'A'] | min }}{{ [1, 2, 3] | sum }}{{ [1, 2, 3, 4, 5] | batch(2) | list }}{{ 'hello world foo' | wordcount }}{{ 'a long sentence here' | truncate(9, leeway=0) }}{{ 'x' | center(5) }}|{{ '<a href=\"x\">' | e }}{{ 2.675 | round(2) }}{{ 2.5 | round }}{{ 3.5 | round }}{{ 1234.5 | round(-2) }}{{ 0.125 | round(2) }}{{ 3.7 | round(method='floor') }}{{ -3 | abs }}"),
            ("none-default", "{{ none | default('d') }}|{{ none | default('d', true) }}|{{ missing | default(none) }}"),
            ("comment-trim", "a\n{# comment #}\nb\n  {#- dash comment -#}\n  c"),
            ("nested-dict-literal", "{{ {'a': {'b': {'c': 1}}} }}{{ {'a': {'b': 1}}['a']['b'] }}"),
            ("generation-tag", "{% for m in messages %}{% generation %}[{{ m }}]{% endgeneration %}{% endfor %}"),
        ];
        foreach (var (name, template) in templates)
        {
            JsonObject vars = name == "generation-tag" ? Vars("""{"messages": ["a", "b"]}""") : Vars();
            yield return new TemplateCase($"python/{name}", template, vars, CompareWithHuggingFaceJinja: false);
        }
    }
}
