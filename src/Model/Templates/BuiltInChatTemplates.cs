namespace LlavaNative.Model.Templates;

/// <summary>
/// Chat templates for the LLaVA family, for checkpoints that carry none (or to override one). Each renders the
/// image placeholder <c>&lt;image&gt;</c> once per image part; the processor expands it per checkpoint
/// (576 / 729 placeholder ids, or <c>&lt;im_start&gt;</c> + 256 × <c>&lt;im_patch&gt;</c> + <c>&lt;im_end&gt;</c>).
/// All of them accept content as a string or as parts; the prompts they produce are those of
/// llava-reference.md §3d.
/// </summary>
public static class BuiltInChatTemplates
{
    /// <summary>
    /// llava-hf/llava-1.5-7b-hf: <c>USER: &lt;image&gt;\nWhat is this? ASSISTANT:</c>; turns end with a space, no
    /// system prompt of its own and no <c>&lt;/s&gt;</c> between turns; a system message's text is printed without a role.
    /// </summary>
    public const string Llava15 = """
        {#- llava-1.5 as llava-hf writes it: "USER: <image>\nQ ASSISTANT: A USER: Q2 ASSISTANT:".
            Every non-system turn starts with its role in capitals; images come first, one "<image>\n" each;
            every text part is followed by a space; assistant text is marked for transformers' assistant mask. -#}
        {%- for message in messages -%}
            {%- if message['role'] != 'system' -%}
                {{- message['role'].upper() + ': ' -}}
            {%- endif -%}
            {%- set parts = [{'type': 'text', 'text': message['content']}] if message['content'] is string else message['content'] -%}
            {%- for part in parts | selectattr('type', 'equalto', 'image') -%}
                {{- '<image>\n' -}}
            {%- endfor -%}
            {%- for part in parts | selectattr('type', 'equalto', 'text') -%}
                {%- if message['role'] == 'assistant' -%}
                    {%- generation -%}
                        {{- part['text'] + ' ' -}}
                    {%- endgeneration -%}
                {%- else -%}
                    {{- part['text'] + ' ' -}}
                {%- endif -%}
            {%- endfor -%}
        {%- endfor -%}
        {%- if add_generation_prompt -%}
            {{- 'ASSISTANT:' -}}
        {%- endif -%}
        """;

    /// <summary>
    /// llava-hf/llava-interleave-qwen-0.5b-hf (ChatML): <c>&lt;|im_start|&gt;user\n&lt;image&gt;&lt;image&gt;\nCompare these.&lt;|im_end|&gt;\n</c>;
    /// images first with no newline between them, then "\n" before every text part (so assistant history reads
    /// <c>&lt;|im_start|&gt;assistant\n\nAnswer&lt;|im_end|&gt;</c>); no default system message.
    /// </summary>
    public const string LlavaInterleave = """
        {#- llava-interleave (Qwen2, ChatML) as llava-hf writes it. Images first, "<image>" each with no separator,
            then "\n" + text for every text part, also in assistant turns. -#}
        {%- for message in messages -%}
            {{- '<|im_start|>' + message['role'] + '\n' -}}
            {%- set parts = [{'type': 'text', 'text': message['content']}] if message['content'] is string else message['content'] -%}
            {%- for part in parts | selectattr('type', 'equalto', 'image') -%}
                {{- '<image>' -}}
            {%- endfor -%}
            {%- for part in parts | selectattr('type', 'equalto', 'text') -%}
                {%- if message['role'] == 'assistant' -%}
                    {%- generation -%}
                        {{- '\n' + part['text'] -}}
                    {%- endgeneration -%}
                {%- else -%}
                    {{- '\n' + part['text'] -}}
                {%- endif -%}
            {%- endfor -%}
            {{- '<|im_end|>\n' -}}
        {%- endfor -%}
        {%- if add_generation_prompt -%}
            {{- '<|im_start|>assistant\n' -}}
        {%- endif -%}
        """;

    /// <summary>
    /// Original LLaVA-1.5 <c>conv_llava_v1</c> (SeparatorStyle.TWO, sep " ", sep2 "&lt;/s&gt;"): system prompt + " ",
    /// then <c>USER: &lt;image&gt;\n{q} ASSISTANT: {a}&lt;/s&gt;USER: …</c>, generation prompt <c>ASSISTANT:</c>.
    /// A leading system message replaces the default system prompt.
    /// </summary>
    public const string VicunaV1 = """
        {#- Original LLaVA conv_llava_v1: system + " ", "USER: " + message + " ", "ASSISTANT: " + message + "</s>".
            As get_prompt does, images go first ("<image>\n" each) and the text of a message with images is stripped. -#}
        {%- if messages and messages[0]['role'] == 'system' -%}
            {%- if messages[0]['content'] is string -%}
                {%- set system = messages[0]['content'] -%}
            {%- else -%}
                {%- set system = messages[0]['content'] | selectattr('type', 'equalto', 'text') | map(attribute='text') | join('\n') -%}
            {%- endif -%}
            {%- set turns = messages[1:] -%}
        {%- else -%}
            {%- set system = "A chat between a curious human and an artificial intelligence assistant. The assistant gives helpful, detailed, and polite answers to the human's questions." -%}
            {%- set turns = messages -%}
        {%- endif -%}
        {{- system + ' ' -}}
        {%- for message in turns -%}
            {%- if message['role'] == 'user' -%}
                {{- 'USER: ' -}}
            {%- elif message['role'] == 'assistant' -%}
                {{- 'ASSISTANT: ' -}}
            {%- else -%}
                {{- raise_exception("vicuna-v1 knows the roles user and assistant (and a leading system), not '" + message['role'] + "'") -}}
            {%- endif -%}
            {%- set parts = [{'type': 'text', 'text': message['content']}] if message['content'] is string else message['content'] -%}
            {%- set images = parts | selectattr('type', 'equalto', 'image') | list -%}
            {%- set text = parts | selectattr('type', 'equalto', 'text') | map(attribute='text') | join('\n') -%}
            {%- for image in images -%}
                {{- '<image>\n' -}}
            {%- endfor -%}
            {{- (text | trim) if images else text -}}
            {{- ' ' if message['role'] == 'user' else '</s>' -}}
        {%- endfor -%}
        {%- if add_generation_prompt -%}
            {{- 'ASSISTANT:' -}}
        {%- endif -%}
        """;

    /// <summary>
    /// Llama-2 chat as Chinese-LLaVA-Cllama2 prompts it: <c>[INST] &lt;&lt;SYS&gt;&gt;\n{system}\n&lt;&lt;/SYS&gt;&gt;\n\n{q}\n&lt;image&gt; [/INST] </c>
    /// (image after the question, BOS left to the tokenizer); answered turns continue
    /// <c>{a} &lt;/s&gt;&lt;s&gt;[INST] {q2} [/INST] </c>. Roles must alternate user/assistant after an optional system message.
    /// </summary>
    public const string Llama2 = """
        {#- Llama-2 chat (Chinese-LLaVA): the system block opens the first user turn; images follow the text,
            "\n<image>" each; every user turn ends with " [/INST] ", every answer with " </s><s>". -#}
        {%- if messages and messages[0]['role'] == 'system' -%}
            {%- if messages[0]['content'] is string -%}
                {%- set system = messages[0]['content'] -%}
            {%- else -%}
                {%- set system = messages[0]['content'] | selectattr('type', 'equalto', 'text') | map(attribute='text') | join('\n') -%}
            {%- endif -%}
            {%- set turns = messages[1:] -%}
        {%- else -%}
            {%- set system = 'You are a helpful language and vision assistant. You are able to understand the visual content that the user provides, and assist the user with a variety of tasks using natural language.' -%}
            {%- set turns = messages -%}
        {%- endif -%}
        {%- for message in turns -%}
            {%- if (message['role'] == 'user') != (loop.index0 % 2 == 0) -%}
                {{- raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') -}}
            {%- endif -%}
            {%- set parts = [{'type': 'text', 'text': message['content']}] if message['content'] is string else message['content'] -%}
            {%- set text = parts | selectattr('type', 'equalto', 'text') | map(attribute='text') | join('\n') -%}
            {%- if message['role'] == 'user' -%}
                {{- '[INST] ' -}}
                {%- if loop.first -%}
                    {{- '<<SYS>>\n' + system + '\n<</SYS>>\n\n' -}}
                {%- endif -%}
                {{- text | trim -}}
                {%- for part in parts | selectattr('type', 'equalto', 'image') -%}
                    {{- '\n<image>' -}}
                {%- endfor -%}
                {{- ' [/INST] ' -}}
            {%- else -%}
                {{- text | trim + ' </s><s>' -}}
            {%- endif -%}
        {%- endfor -%}
        """;

    private static readonly Dictionary<string, (string Canonical, string Source)> ByName = new(StringComparer.OrdinalIgnoreCase)
    {
        ["llava-1.5"] = ("llava-1.5", Llava15),
        ["llava-interleave"] = ("llava-interleave", LlavaInterleave),
        ["chatml"] = ("llava-interleave", LlavaInterleave),
        ["vicuna-v1"] = ("vicuna-v1", VicunaV1),
        ["llama-2"] = ("llama-2", Llama2),
    };

    /// <summary>Names accepted by <see cref="TryGetSource"/> (chatml is an alias of llava-interleave).</summary>
    public static IReadOnlyList<string> Names { get; } = ["llava-1.5", "llava-interleave", "chatml", "vicuna-v1", "llama-2"];

    public static bool TryGetSource(string name, out string canonicalName, out string source)
    {
        if (ByName.TryGetValue(name, out var entry))
        {
            (canonicalName, source) = entry;
            return true;
        }
        canonicalName = source = "";
        return false;
    }
}
