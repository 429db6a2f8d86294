using System.Diagnostics;
using System.Text.Json;
using LlavaNative.Kernels.Cpu;
using LlavaNative.Model.Chat;
using LlavaNative.Model.Formats;
using LlavaNative.Model.Generation;
using LlavaNative.Model.Llava;
using LlavaNative.Model.Templates;

namespace LlavaNative.Cli.Commands;

/// <summary>
/// <c>llava chat</c>: a conversation in the terminal. Each input line is a user turn rendered through the chat
/// template; only the new part of the rendered conversation is evaluated (<see cref="LlavaConversation"/>). Answers go
/// to stdout, everything else (prompt marker, notes, errors, timings) to stderr.
/// </summary>
public sealed class ChatCommand : Command
{
    public override string Name => "chat";
    public override string Summary => "converse with a model in the terminal (one line per turn; /help lists commands)";
    public override string[] Examples =>
    [
        "llava chat --image samples/tiny-llava-1.png --temp 0   # no -m: the shipped tiny LLaVA (models/tiny-llava/hf)",
        "llava chat -m llava-v1.5-7b-q4_k.gguf --mmproj mmproj-f16.gguf --image cat.jpg",
        "llava chat -m interleave.gguf --mmproj mmproj.gguf --system \"Answer briefly.\" --temp 0 --timings",
        "printf '/image a.png\\nWhat is this?\\nAnd the colours?\\n' | llava chat -m llava.gguf --mmproj mmproj.gguf --temp 0 -n 64",
        "llava chat -m llava.gguf --mmproj mmproj.gguf --load yesterday.json",
    ];
    public override IReadOnlyList<OptionSpec> Options =>
    [
        DefaultModel.Option,
        new(["--mmproj"], "FILE", "vision tower + projector GGUF (llama.cpp mmproj layout); a llava Hugging Face folder carries its own"),
        new(["--vision-tower"], "DIR", "CLIP checkpoint folder for an original LLaVA checkpoint"),
        new(["--image"], "FILE", "image attached to the first message (repeatable; /image adds more later)", Repeatable: true),
        new(["--image-mode"], "MODE", "crop (HF CLIP processor), pad (original LLaVA, default for CLIP), resize-pad (llama.cpp), stretch (SigLIP default)"),
        new(["--chat-template"], "NAME|FILE", "llava-1.5, llava-interleave/chatml, vicuna-v1, llama-2 or a Jinja file (default: the model's own, else by model family)"),
        new(["--system"], "TEXT", "system message (kept by /reset)"),
        new(["--load"], "FILE", "start from a conversation saved with /save"),
        .. GenerationOptionSpecs,
        new(["--timings"], null, "after each answer, print positions evaluated and reused and the speeds to stderr"),
        ContextSize, CacheType, Quantize, Backend, Threads, Help,
    ];

    private const string CommandsHelp =
        "/image PATH   attach an image to the next message (repeatable)\n" +
        "/reset        clear the conversation and the cache (the system message stays)\n" +
        "/save FILE    write the conversation as JSON (roles, text, image paths)\n" +
        "/load FILE    replace the conversation with a saved one\n" +
        "/help         this list\n" +
        "/exit         leave (end of input does too); Ctrl-C stops an answer, at the prompt it leaves\n" +
        "//text        a message that starts with '/'";

    public override int Execute(ParsedArguments args)
    {
        string path = DefaultModel.Resolve(args);
        string? mmproj = args.Get("--mmproj");
        if (mmproj is null && !Directory.Exists(path))
            throw new UsageException("--mmproj (the vision tower GGUF) is required with a GGUF model; chat runs on a LLaVA model (a llava Hugging Face folder carries its own tower)");
        int threads = args.GetInt("-t", ComputeThreadPool.DefaultThreadCount(), 1, 1024);
        var options = ParseGenerationOptions(args);
        var imageMode = ParseImageMode(args.Get("--image-mode"));
        if (string.Equals(args.Get("--chat-template"), "none", StringComparison.OrdinalIgnoreCase))
            throw new UsageException("chat needs a chat template ('none' is for run)");
        var firstImages = args.GetAll("--image").Select(LlavaImage.FromFile).ToList();

        using var pool = new ComputeThreadPool(threads);
        using var model = LlavaModel.Load(path, mmproj, pool, LoadOptions(args, pool), args.Get("--vision-tower"));
        ReportBackend(model.Backend);
        int context = args.GetInt("-c", Math.Min(model.Decoder.Config.ContextLength, 4096), 1, model.Decoder.Config.ContextLength);
        var template = model.ChooseChatTemplate(args.Get("--chat-template"))!;
        using var session = model.CreateSession(new LlavaSessionOptions
        {
            ContextSize = context,
            CacheType = ParseCacheType(args),
            Preprocessing = imageMode is { } m ? model.Preprocessing with { Mode = m } : null,
        });
        var chat = new Chat(new LlavaConversation(session, template, args.Get("--system")), options, args.Has("--timings"),
            Console.In, Console.Out, Console.Error, interactive: !Console.IsInputRedirected);
        chat.PendingImages.AddRange(firstImages);
        if (args.Get("--load") is { } saved) chat.Conversation.Load(ConversationFile.Read(saved));
        return chat.Run();
    }

    /// <summary>The read–answer loop.</summary>
    private sealed class Chat(LlavaConversation conversation, GenerationOptions options, bool timings,
        TextReader input, TextWriter output, TextWriter messages, bool interactive)
    {
        private CancellationTokenSource? _answering;

        public LlavaConversation Conversation { get; } = conversation;
        public List<LlavaImage> PendingImages { get; } = [];

        public int Run()
        {
            // Ctrl-C while answering stops the answer; at the prompt the default applies (the program ends).
            ConsoleCancelEventHandler onCancel = (_, e) =>
            {
                if (Volatile.Read(ref _answering) is not { } answering) return;
                e.Cancel = true;
                answering.Cancel();
            };
            Console.CancelKeyPress += onCancel;
            try
            {
                if (interactive)
                    messages.WriteLine($"chat with {Path.GetFileName(Conversation.Model.Decoder.SourcePath)} ({Conversation.Template.Name} template, " +
                                       $"{Conversation.Session.ContextSize} positions); /help lists commands");
                while (true)
                {
                    if (interactive)
                    {
                        messages.Write(PendingImages.Count > 0 ? $"[{PendingImages.Count} image(s)] > " : "> ");
                        messages.Flush();
                    }
                    string? line = input.ReadLine();
                    if (line is null) return 0;
                    if (line.StartsWith("//", StringComparison.Ordinal)) line = line[1..];
                    else if (line.StartsWith('/'))
                    {
                        if (!RunCommand(line)) return 0;
                        continue;
                    }
                    if (line.Trim().Length == 0 && PendingImages.Count == 0) continue;
                    Turn(line);
                }
            }
            finally
            {
                Console.CancelKeyPress -= onCancel;
            }
        }

        /// <summary>Handles a /command; false to leave.</summary>
        private bool RunCommand(string line)
        {
            int space = line.IndexOf(' ');
            string name = space < 0 ? line : line[..space];
            string argument = space < 0 ? "" : line[(space + 1)..].Trim().Trim('"');
            switch (name)
            {
                case "/exit" or "/quit":
                    return false;
                case "/help":
                    messages.WriteLine(CommandsHelp);
                    break;
                case "/reset":
                    Conversation.Reset();
                    PendingImages.Clear();
                    messages.WriteLine("conversation cleared");
                    break;
                case "/image" when argument.Length > 0:
                    try
                    {
                        var image = LlavaImage.FromFile(argument);
                        image.Decode(); // a file that is no image fails now, not with the next message
                        PendingImages.Add(image);
                        messages.WriteLine($"{argument}: attached to the next message ({PendingImages.Count} image(s))");
                    }
                    catch (Exception e) when (e is IOException or UnauthorizedAccessException or ModelFormatException)
                    {
                        messages.WriteLine($"error: {e.Message}; no image attached");
                    }
                    break;
                case "/save" when argument.Length > 0:
                    try
                    {
                        ConversationFile.Write(argument, Conversation);
                        messages.WriteLine($"{argument}: {Conversation.Messages.Count} message(s) saved");
                    }
                    catch (Exception e) when (e is IOException or UnauthorizedAccessException)
                    {
                        messages.WriteLine($"error: {argument}: {e.Message}");
                    }
                    break;
                case "/load" when argument.Length > 0:
                    try
                    {
                        Conversation.Load(ConversationFile.Read(argument));
                        PendingImages.Clear();
                        messages.WriteLine($"{argument}: {Conversation.Messages.Count} message(s) loaded ({Conversation.Session.Position} positions)");
                    }
                    catch (Exception e) when (e is IOException or UnauthorizedAccessException or FormatException or ModelFormatException
                                                  or LlavaContextOverflowException or ArgumentException or TemplateException)
                    {
                        messages.WriteLine($"error: {e.Message}; the conversation is now empty");
                        Conversation.Reset();
                    }
                    break;
                case "/image" or "/save" or "/load":
                    messages.WriteLine($"{name} needs a file path");
                    break;
                default:
                    messages.WriteLine($"unknown command '{name}'; /help lists the commands (start a message with // to send a '/')");
                    break;
            }
            return true;
        }

        private void Turn(string text)
        {
            var session = Conversation.Session;
            var promptTimeBefore = session.Stats.PromptTime;
            // After an answer cut at a stop string the cache is cut back to the rendering: expected, not worth a note.
            bool afterStopString = Conversation.Messages.Count > 0 && Conversation.Messages[^1].Stop == StopReason.StopString;
            LlavaAppendResult appended;
            try
            {
                appended = Conversation.AddUserMessage(text, PendingImages.ToList());
            }
            catch (LlavaContextOverflowException e)
            {
                messages.WriteLine($"context full: {e.Message}. The conversation is kept; /reset starts a new one");
                return;
            }
            catch (Exception e) when (e is ModelFormatException or LlavaPromptException or TemplateException or IOException)
            {
                messages.WriteLine($"error: {e.Message}; the message was not sent" + (PendingImages.Count > 0 ? " and its images were dropped" : ""));
                PendingImages.Clear();
                return;
            }
            PendingImages.Clear();
            if (appended.Update == LlavaCacheUpdate.Reevaluated && !afterStopString)
                messages.WriteLine($"note: the chat template wrote earlier turns differently this time; {appended.ReusedPositions} positions " +
                                   $"were kept from the cache and {appended.EvaluatedPositions} evaluated again");
            var promptTime = (session.Stats.PromptTime - promptTimeBefore).TotalMilliseconds;

            using var answering = new CancellationTokenSource();
            Volatile.Write(ref _answering, answering);
            var stop = StopReason.None;
            var clock = Stopwatch.StartNew();
            try
            {
                foreach (var piece in Conversation.GenerateReply(options, answering.Token))
                {
                    output.Write(piece.Text);
                    output.Flush();
                    if (piece.Stop != StopReason.None) stop = piece.Stop;
                }
            }
            finally
            {
                Volatile.Write(ref _answering, null);
            }
            output.WriteLine();
            output.Flush();
            if (stop == StopReason.Cancelled) messages.WriteLine("[answer interrupted; the part shown stays in the conversation]");
            if (stop == StopReason.ContextFull)
                messages.WriteLine($"context full ({session.ContextSize} positions): the answer was cut short; /reset starts a new conversation");
            if (timings && session.LastGeneration is { } g)
                messages.WriteLine($"prompt: {appended.EvaluatedPositions} positions evaluated, {appended.ReusedPositions} reused ({appended.Update}), {promptTime:F0} ms | " +
                                   $"answer: {g.GeneratedTokens} tokens, {g.GeneratedTokensPerSecond:F1} tok/s | context: {session.Position}/{session.ContextSize} | " +
                                   $"images encoded: {session.Stats.ImagesEncoded}, from cache: {session.Stats.ImageCacheHits}");
        }
    }

    /// <summary>
    /// The /save format: <c>{"format": "llava-chat", "version": 1, "chat_template": NAME, "messages": [{"role", "text",
    /// "images": [full paths], "stop"}]}</c>. On reading, relative image paths are taken from the file's folder.
    /// </summary>
    internal static class ConversationFile
    {
        public static void Write(string path, LlavaConversation conversation)
        {
            using var stream = File.Create(path);
            using var w = new Utf8JsonWriter(stream, new JsonWriterOptions { Indented = true });
            w.WriteStartObject();
            w.WriteString("format", "llava-chat");
            w.WriteNumber("version", 1);
            w.WriteString("chat_template", conversation.Template.Name);
            w.WriteStartArray("messages");
            foreach (var m in conversation.Messages)
            {
                w.WriteStartObject();
                w.WriteString("role", m.Role);
                w.WriteString("text", m.Text);
                if (m.Images.Count > 0)
                {
                    w.WriteStartArray("images");
                    foreach (var image in m.Images) w.WriteStringValue(Path.GetFullPath(image.Name));
                    w.WriteEndArray();
                }
                if (m.Stop is { } stop)
                {
                    w.WriteString("stop", stop.ToString());
                    w.WriteBoolean("incomplete", m.IsIncomplete);
                }
                w.WriteEndObject();
            }
            w.WriteEndArray();
            w.WriteEndObject();
        }

        /// <exception cref="FormatException">Not a conversation file (the message names the file and the problem).</exception>
        public static List<LlavaChatMessage> Read(string path)
        {
            if (!File.Exists(path)) throw new FileNotFoundException($"{path}: conversation file not found", path);
            string folder = Path.GetDirectoryName(Path.GetFullPath(path))!;
            JsonDocument json;
            try { json = JsonDocument.Parse(File.ReadAllBytes(path)); }
            catch (JsonException e) { throw new FormatException($"{path}: not valid JSON ({e.Message})", e); }
            using (json)
            {
                var root = json.RootElement;
                if (root.ValueKind != JsonValueKind.Object || !root.TryGetProperty("messages", out var list) || list.ValueKind != JsonValueKind.Array)
                    throw new FormatException($"{path}: no \"messages\" array; not a conversation written by /save");
                var result = new List<LlavaChatMessage>();
                int index = 0;
                foreach (var item in list.EnumerateArray())
                {
                    index++;
                    string role = String(item, "role") ?? throw new FormatException($"{path}: message {index} has no string \"role\"");
                    string text = String(item, "text") ?? throw new FormatException($"{path}: message {index} has no string \"text\"");
                    var images = new List<LlavaImage>();
                    if (item.TryGetProperty("images", out var paths))
                    {
                        if (paths.ValueKind != JsonValueKind.Array) throw new FormatException($"{path}: message {index}: \"images\" is not an array");
                        foreach (var p in paths.EnumerateArray())
                        {
                            if (p.ValueKind != JsonValueKind.String) throw new FormatException($"{path}: message {index}: an image path is not a string");
                            images.Add(LlavaImage.FromFile(Path.Combine(folder, p.GetString()!)));
                        }
                    }
                    StopReason? stop = String(item, "stop") is { } s && Enum.TryParse<StopReason>(s, out var r) ? r : null;
                    result.Add(new LlavaChatMessage(role, text, images) { Stop = stop });
                }
                if (result.Count == 0) throw new FormatException($"{path}: the conversation has no messages");
                return result;
            }
        }

        private static string? String(JsonElement item, string name) =>
            item.ValueKind == JsonValueKind.Object && item.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.String ? v.GetString() : null;
    }
}
