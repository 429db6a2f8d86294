using System.Diagnostics;
using LlavaNative.Kernels.Cpu;
using LlavaNative.Kernels.Cuda;
using LlavaNative.Model.Formats;
using LlavaNative.Model.Formats.HuggingFace;
using LlavaNative.Model.Imaging;
using LlavaNative.Model.Language;
using LlavaNative.Model.Templates;
using LlavaNative.Model.Tokenizers;
using LlavaNative.Model.Vision;

namespace LlavaNative.Model.Llava;

/// <summary>
/// A LLaVA checkpoint as plain composition (candle's <c>Llava { VisionTower, Projector, Decoder }</c>): the decoder,
/// the image encoder (tower + projector), how images are preprocessed, where their rows go in a prompt
/// (<see cref="PromptFormat"/>) and which chat template the checkpoint was trained with. Immutable once loaded;
/// conversations live in <see cref="LlavaSession"/>s.
/// <para>
/// The decoder runs on <see cref="Backend"/> (the CPU, or a CUDA GPU holding a copy of its weights, chosen by
/// <see cref="ModelLoadOptions.Backend"/>); each session gets its KV cache there. On the CUDA backend the vision tower
/// and projector run on the same GPU too (<see cref="GpuEncoder"/>, used by <see cref="LlavaSession.EncodeImage"/>);
/// <see cref="Encoder"/> keeps their configuration and CPU weights.
/// </para>
/// </summary>
public sealed class LlavaModel : IDisposable
{
    private readonly bool _ownsParts;
    private readonly ComputeThreadPool? _ownedPool;

    private LlavaModel(DecoderModel decoder, DecoderBackend backend, ImageEncoder encoder, LlavaPromptFormat format, ImagePreprocessorConfig preprocessing,
        string defaultChatTemplate, TimeSpan loadTime, bool ownsParts, ComputeThreadPool? ownedPool, bool? gpuTensorCores)
    {
        Decoder = decoder;
        Backend = backend;
        Encoder = encoder;
        // The encoder follows the decoder onto the GPU; a tower the GPU cannot run is an error there, not a silent
        // switch back to the CPU (the backend was already checked by a probe, so this fails only on the tower itself).
        if (backend.Device is { } device)
        {
            try { GpuEncoder = new GpuImageEncoder(device, encoder, gpuTensorCores); }
            catch (Exception e) when (e is not OutOfMemoryException)
            {
                throw new ComputeBackendUnavailableException(
                    $"{encoder.SourcePath ?? "the image encoder"}: cannot run on {backend.DeviceName}: {e.Message}", e);
            }
        }
        PromptFormat = format;
        Preprocessing = preprocessing;
        DefaultChatTemplateName = defaultChatTemplate;
        LoadTime = loadTime;
        _ownsParts = ownsParts;
        _ownedPool = ownedPool;
        Tokenizer = decoder.Vocabulary is { } v ? Tokenizer.FromVocabulary(v) : null;
    }

    /// <summary>The decoder's configuration, vocabulary and CPU weights (whichever backend runs it).</summary>
    public DecoderModel Decoder { get; }

    /// <summary>Where the decoder runs; <see cref="DecoderBackend.Notice"/> says why when Auto fell back to the CPU.</summary>
    public DecoderBackend Backend { get; }

    public ImageEncoder Encoder { get; }

    /// <summary>The vision tower and projector on the GPU when <see cref="Backend"/> is CUDA; null on the CPU.</summary>
    public GpuImageEncoder? GpuEncoder { get; }

    /// <summary>Where images are encoded: the GPU with the decoder, or the CPU.</summary>
    public ComputeBackend EncoderBackend => GpuEncoder is null ? ComputeBackend.Cpu : ComputeBackend.Cuda;

    /// <summary>The text model's tokenizer; null when the checkpoint has none (then only token-id prompts work).</summary>
    public Tokenizer? Tokenizer { get; }

    public LlavaPromptFormat PromptFormat { get; }

    /// <summary>How images become the encoder's [3, S, S] input (a session may override the fit mode).</summary>
    public ImagePreprocessorConfig Preprocessing { get; }

    /// <summary>Built-in template used when the checkpoint carries none (see <see cref="ChooseChatTemplate"/>).</summary>
    public string DefaultChatTemplateName { get; }

    /// <summary>Wall time spent opening the files.</summary>
    public TimeSpan LoadTime { get; }

    /// <summary>Rows (positions) one image occupies.</summary>
    public int ImageTokenCount => Encoder.ImageTokenCount;

    /// <summary>The pool the decoder and encoder share.</summary>
    public ComputeThreadPool Pool => Encoder.Pool;

    /// <summary>
    /// Opens a GGUF text model and its mmproj GGUF (llama.cpp's layout). Images go in as embedding rows at the
    /// marker (<see cref="ImagePlacement.Embeddings"/>) unless the vocabulary has LLaVA v1's patch tokens.
    /// </summary>
    /// <exception cref="ModelFormatException">Either file is unusable, or the projector's output width differs from the text model's dimension.</exception>
    public static LlavaModel LoadGguf(string textGguf, string mmprojGguf, ComputeThreadPool? pool = null, ModelLoadOptions? options = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(mmprojGguf);
        var clock = Stopwatch.StartNew();
        return Open(() => DecoderModel.LoadGguf(textGguf, options), mmprojGguf, null, null, pool, null, options, clock);
    }

    /// <summary>
    /// Opens <paramref name="model"/> — a GGUF file or a Hugging Face folder — with its image encoder:
    /// <list type="bullet">
    /// <item>with <paramref name="mmproj"/>: the vision tower + projector of that mmproj GGUF, preprocessing from its metadata
    /// (<see cref="DefaultPreprocessing"/>);</item>
    /// <item>without: a llava-hf folder's own tower and projector (<see cref="ImageEncoder.LoadHuggingFace"/>) and its
    /// preprocessor_config.json (<see cref="ImagePreprocessorConfig.FromHuggingFace(string, string?)"/>); an original LLaVA
    /// checkpoint also needs <paramref name="visionTower"/>, the CLIP folder its tower comes from.</item>
    /// </list>
    /// For a llava-hf config.json images become <c>image_token_index</c> placeholders; a GGUF takes rows at markers.
    /// </summary>
    /// <exception cref="ModelFormatException">A file is unusable, there is no image encoder, or the widths differ.</exception>
    public static LlavaModel Load(string model, string? mmproj, ComputeThreadPool? pool = null, ModelLoadOptions? options = null, string? visionTower = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(model);
        var clock = Stopwatch.StartNew();
        string? hfFolder = Directory.Exists(model) ? model
            : File.Exists(model) && Path.GetFileName(model) == HfModelConfig.FileName ? Path.GetDirectoryName(Path.GetFullPath(model)) : null;
        HfModelConfig? hf = hfFolder is not null && File.Exists(Path.Combine(hfFolder, HfModelConfig.FileName)) ? HfModelConfig.Load(hfFolder) : null;
        if (mmproj is null && (hf is null || !hf.IsLlava))
            throw new ModelFormatException(hf is null
                ? $"{model}: a GGUF text model has no vision tower; give its mmproj GGUF (--mmproj)"
                : $"{Path.Combine(hfFolder!, HfModelConfig.FileName)}: model_type '{hf.ModelType}' is a text model without a vision tower; give an mmproj GGUF (--mmproj) or a llava folder");
        return Open(() => ModelLoader.Load(model, options), mmproj, mmproj is null ? hfFolder : null, visionTower, pool, hf, options, clock);
    }

    /// <summary>
    /// Joins an opened decoder and image encoder (e.g. a Hugging Face tower from <c>ImageEncoder.LoadHuggingFace</c>).
    /// With <paramref name="ownsParts"/> the model disposes them. The decoder runs on <paramref name="backend"/>
    /// (<see cref="DecoderBackend.Open"/>, on <paramref name="gpuDevice"/> when given); the model owns that backend.
    /// </summary>
    /// <exception cref="ModelFormatException">The encoder's embeddings are not as wide as the decoder's dimension.</exception>
    /// <exception cref="ComputeBackendUnavailableException"><paramref name="backend"/> is Cuda and no GPU can run the decoder.</exception>
    public static LlavaModel Compose(DecoderModel decoder, ImageEncoder encoder, LlavaPromptFormat format, ImagePreprocessorConfig preprocessing,
        bool ownsParts = false, string? defaultChatTemplate = null, TimeSpan loadTime = default,
        ComputeBackend backend = ComputeBackend.Cpu, IGpuDevice? gpuDevice = null, bool? gpuTensorCores = null)
    {
        ArgumentNullException.ThrowIfNull(decoder);
        ArgumentNullException.ThrowIfNull(encoder);
        ArgumentNullException.ThrowIfNull(format);
        ArgumentNullException.ThrowIfNull(preprocessing);
        CheckWidths(decoder, encoder);
        var opened = DecoderBackend.Open(decoder, backend, gpuDevice, gpuTensorCores);
        try
        {
            return new LlavaModel(decoder, opened, encoder, format, preprocessing,
                defaultChatTemplate ?? DefaultTemplateFor(decoder, encoder, format, huggingFace: false), loadTime, ownsParts, null, gpuTensorCores);
        }
        catch
        {
            opened.Dispose();
            throw;
        }
    }

    /// <summary>The decoder, then the encoder from <paramref name="mmproj"/> or else from the Hugging Face <paramref name="hfVisionFolder"/>.</summary>
    private static LlavaModel Open(Func<DecoderModel> openDecoder, string? mmproj, string? hfVisionFolder, string? visionTower,
        ComputeThreadPool? pool, HfModelConfig? hf, ModelLoadOptions? options, Stopwatch clock)
    {
        var ownedPool = pool is null ? new ComputeThreadPool() : null;
        DecoderModel? decoder = null;
        DecoderBackend? backend = null;
        ImageEncoder? encoder = null;
        try
        {
            decoder = openDecoder();
            ImagePreprocessorConfig preprocessing;
            if (mmproj is not null)
            {
                encoder = ImageEncoder.LoadGguf(mmproj, pool ?? ownedPool);
                preprocessing = DefaultPreprocessing(encoder.VisionConfig);
            }
            else
            {
                encoder = ImageEncoder.LoadHuggingFace(hfVisionFolder!, pool ?? ownedPool, visionTower);
                preprocessing = ImagePreprocessorConfig.FromHuggingFace(hfVisionFolder!, visionTower);
            }
            CheckWidths(decoder, encoder);
            if (hf?.Llava is { } llava && (llava.ImageTokenIndex < 0 || llava.ImageTokenIndex >= decoder.Config.VocabSize))
                throw new ModelFormatException(
                    $"{hf.Path}: image_token_index {llava.ImageTokenIndex} is outside the text model's vocabulary (0..{decoder.Config.VocabSize - 1}, " +
                    "text_config.vocab_size / embedding rows); the placeholder must be a token id, e.g. the tokenizer's added '<image>'");
            var format = LlavaPromptFormat.Detect(decoder.Vocabulary, hf);
            if (hf is { UsesImStartEnd: true } && format.Placement != ImagePlacement.PatchTokens)
                throw new ModelFormatException(
                    $"{hf.Path}: mm_use_im_start_end is true but the tokenizer of {decoder.SourcePath} has no '<im_patch>', '<im_start>' and '<im_end>' tokens " +
                    "(LLaVA v1 adds them: the image rows replace the <im_patch> tokens between <im_start> and <im_end>)");
            string template = DefaultTemplateFor(decoder, encoder, format, huggingFace: hf is { IsOriginalLlava: false });
            // Last: every file check has passed before the weights are uploaded to a GPU.
            backend = DecoderBackend.Open(decoder, options?.Backend ?? ComputeBackend.Cpu, options?.GpuDevice, options?.GpuTensorCores);
            clock.Stop();
            return new LlavaModel(decoder, backend, encoder, format, preprocessing, template, clock.Elapsed, ownsParts: true, ownedPool, options?.GpuTensorCores);
        }
        catch
        {
            backend?.Dispose();
            encoder?.Dispose();
            decoder?.Dispose();
            ownedPool?.Dispose();
            throw;
        }
    }

    private static void CheckWidths(DecoderModel decoder, ImageEncoder encoder)
    {
        if (encoder.EmbeddingLength != decoder.Config.Dim)
            throw new ModelFormatException(
                $"{encoder.SourcePath ?? "image encoder"}: the projector produces {encoder.EmbeddingLength}-wide image embeddings but the text model " +
                $"{decoder.SourcePath} has dimension {decoder.Config.Dim}; this vision tower was made for another text model");
    }

    /// <summary>
    /// Preprocessing from the tower's own metadata: its size, mean and std; SigLIP stretches (llava-interleave),
    /// CLIP pads to a square with the mean colour as original LLaVA-1.5 does (the same default as <c>encode-image</c>).
    /// </summary>
    public static ImagePreprocessorConfig DefaultPreprocessing(VisionConfig vision) => new()
    {
        ImageSize = vision.ImageSize,
        Mode = vision.Kind == VisionTowerKind.SigLip ? ImageFitMode.Stretch : ImageFitMode.Pad,
        Mean = vision.ImageMean.ToArray(),
        Std = vision.ImageStd.ToArray(),
    };

    /// <summary>
    /// llava-reference §3d: LLaVA v1 patch tokens → llama-2 (Chinese-LLaVA); a SigLIP tower or a Qwen2 decoder →
    /// llava-interleave (ChatML); a llava-hf folder → llava-1.5 as llava-hf writes it; an original LLaVA checkpoint
    /// folder or any other GGUF (LLaVA-1.5 converted by llama.cpp) → vicuna-v1, the original conversation format.
    /// </summary>
    private static string DefaultTemplateFor(DecoderModel decoder, ImageEncoder encoder, LlavaPromptFormat format, bool huggingFace)
    {
        if (format.Placement == ImagePlacement.PatchTokens) return "llama-2";
        if (encoder.VisionConfig.Kind == VisionTowerKind.SigLip || decoder.Config.Architecture == "qwen2") return "llava-interleave";
        return huggingFace ? "llava-1.5" : "vicuna-v1";
    }

    /// <summary>
    /// The chat template for prompts: <paramref name="requested"/> ("none" → null = raw prompt; a built-in name or a
    /// template file), else the checkpoint's own (<c>tokenizer.chat_template</c>), else <see cref="DefaultChatTemplateName"/>.
    /// </summary>
    public ChatTemplate? ChooseChatTemplate(string? requested = null)
    {
        if (string.Equals(requested, "none", StringComparison.OrdinalIgnoreCase)) return null;
        return ChatTemplate.Choose(requested, Decoder.Vocabulary?.ChatTemplate, DefaultChatTemplateName);
    }

    /// <summary>
    /// Renders one user turn for generation: the template places the images (first, for the built-in ones) unless
    /// <paramref name="userText"/> has its own markers, which are then kept where they are. With no template
    /// (<paramref name="template"/> null) the text is returned as it is.
    /// </summary>
    public string RenderUserPrompt(ChatTemplate? template, string userText, int imageCount)
    {
        ArgumentNullException.ThrowIfNull(userText);
        if (template is null) return userText;
        bool hasMarkers = userText.Contains(PromptFormat.ImageMarker, StringComparison.Ordinal);
        var message = hasMarkers || imageCount == 0 ? ChatMessage.FromText("user", userText) : ChatMessage.User(userText, imageCount);
        return RenderChat(template, [message], addGenerationPrompt: true);
    }

    /// <summary>
    /// Renders a conversation with this checkpoint's conventions: image parts become <see cref="LlavaPromptFormat.ImageMarker"/>
    /// (for <see cref="ComposeText"/>), <c>bos_token</c> renders empty (the tokenizer adds BOS at the start of a session,
    /// so a template printing it must not add a second), <c>eos_token</c> is the tokenizer's EOS text.
    /// </summary>
    /// <exception cref="TemplateException">The template failed or raised (e.g. roles not alternating).</exception>
    public string RenderChat(ChatTemplate template, IReadOnlyList<ChatMessage> messages, bool addGenerationPrompt)
    {
        ArgumentNullException.ThrowIfNull(template);
        ArgumentNullException.ThrowIfNull(messages);
        return template.Render(messages, new ChatTemplateOptions
        {
            AddGenerationPrompt = addGenerationPrompt,
            BosToken = "",
            EosToken = Tokenizer is { EosId: >= 0 } t ? t.TokenText(t.EosId) : "",
            ImageMarker = PromptFormat.ImageMarker,
        });
    }

    /// <summary>
    /// Text with image markers → chunks. The k-th marker receives the k-th image; with no marker at all the images go
    /// first (after BOS), as the templates put them. Text between markers is tokenized piece by piece (special tokens
    /// recognised), BOS before the first piece when <paramref name="addSpecial"/>. With <paramref name="continuesText"/>
    /// the first piece continues text already in the cache (<see cref="Tokenizer.EncodeContinuation"/>: no
    /// SentencePiece space prefix), as a later chat turn does.
    /// </summary>
    /// <exception cref="LlavaPromptException">The number of markers is neither 0 nor the number of images.</exception>
    public LlavaPrompt ComposeText(string text, IReadOnlyList<LlavaImage> images, bool addSpecial = true, bool continuesText = false)
    {
        ArgumentNullException.ThrowIfNull(text);
        ArgumentNullException.ThrowIfNull(images);
        var tokenizer = RequireTokenizer();
        string marker = PromptFormat.ImageMarker;
        string[] pieces = text.Split(marker);
        int markers = pieces.Length - 1;
        var chunks = new List<LlavaPromptChunk>();
        if (markers == 0)
        {
            if (images.Count > 0)
            {
                if (addSpecial && tokenizer.AddBos && tokenizer.BosId >= 0) chunks.Add(new TokenChunk([tokenizer.BosId]));
                foreach (var image in images) AddImage(chunks, image);
                AddTokens(chunks, tokenizer.Encode(text, addSpecial: false, parseSpecial: true));
            }
            else
            {
                AddTokens(chunks, continuesText ? tokenizer.EncodeContinuation(text) : tokenizer.Encode(text, addSpecial, parseSpecial: true));
            }
            return new LlavaPrompt(chunks);
        }
        if (markers != images.Count)
            throw new LlavaPromptException(
                $"the prompt has {markers} image marker(s) '{marker}' but {images.Count} image(s) were given; give one image per marker " +
                "(the k-th image goes to the k-th marker), or no marker at all to put the images first");
        for (int k = 0; k < pieces.Length; k++)
        {
            AddTokens(chunks, continuesText && k == 0 ? tokenizer.EncodeContinuation(pieces[k])
                : tokenizer.Encode(pieces[k], addSpecial: addSpecial && k == 0, parseSpecial: true));
            if (k < images.Count) AddImage(chunks, images[k]);
        }
        return new LlavaPrompt(chunks);
    }

    /// <summary>
    /// Token ids holding this checkpoint's image placeholders → chunks. <see cref="ImagePlacement.PlaceholderToken"/>:
    /// the <c>image_token_index</c> ids, either exactly one per image (each expanded to <see cref="ImageTokenCount"/>
    /// rows) or exactly images × ImageTokenCount of them (the k-th group of ImageTokenCount takes the k-th image's
    /// rows, as transformers' masked_scatter does). <see cref="ImagePlacement.PatchTokens"/>: the same for
    /// <c>&lt;im_patch&gt;</c>, start and end tokens staying. <see cref="ImagePlacement.Embeddings"/> has no placeholder id:
    /// build a <see cref="LlavaPrompt"/> from chunks instead.
    /// </summary>
    /// <exception cref="LlavaPromptException">The placeholder count fits neither rule.</exception>
    public LlavaPrompt ComposeTokens(ReadOnlySpan<int> ids, IReadOnlyList<LlavaImage> images)
    {
        ArgumentNullException.ThrowIfNull(images);
        int placeholder = PromptFormat.Placement switch
        {
            ImagePlacement.PlaceholderToken => PromptFormat.PlaceholderTokenId,
            ImagePlacement.PatchTokens => PromptFormat.PatchTokenId,
            _ => -1,
        };
        if (placeholder < 0)
        {
            if (images.Count > 0)
                throw new LlavaPromptException(
                    $"{Path.GetFileName(Decoder.SourcePath)} has no image placeholder id (images go in as embedding rows at a marker); " +
                    "place the images with chunks (eval: 'img' in --tokens) or with markers in prompt text");
            return new LlavaPrompt([new TokenChunk(ids.ToArray())]);
        }

        int total = 0, runs = 0;
        bool allSingles = true;
        for (int i = 0; i < ids.Length; i++)
        {
            if (ids[i] != placeholder) continue;
            total++;
            if (i == 0 || ids[i - 1] != placeholder)
            {
                runs++;
                if (i + 1 < ids.Length && ids[i + 1] == placeholder) allSingles = false;
            }
        }
        int n = ImageTokenCount;
        bool expand = total == images.Count && runs == images.Count && allSingles;
        if (!expand && total != images.Count * n)
            throw new LlavaPromptException(
                $"the prompt has {total} image placeholder id(s) ({placeholder}) but {images.Count} image(s) need {images.Count} × {n} = {images.Count * n} " +
                $"(or exactly one placeholder per image, which is expanded to {n})");

        var chunks = new List<LlavaPromptChunk>();
        var text = new List<int>();
        int image = 0, row = 0;
        for (int i = 0; i < ids.Length; i++)
        {
            if (ids[i] != placeholder)
            {
                text.Add(ids[i]);
                continue;
            }
            AddTokens(chunks, text.ToArray());
            text.Clear();
            if (expand)
            {
                chunks.Add(new ImageChunk(images[image++]));
                continue;
            }
            // A run of placeholders takes consecutive rows of the current image, moving to the next image after n rows.
            int run = 1;
            while (i + run < ids.Length && ids[i + run] == placeholder && row + run < n) run++;
            chunks.Add(new ImageChunk(images[image], row, run));
            row += run;
            if (row == n) { image++; row = 0; }
            i += run - 1;
        }
        AddTokens(chunks, text.ToArray());
        return new LlavaPrompt(chunks);
    }

    private void AddImage(List<LlavaPromptChunk> chunks, LlavaImage image)
    {
        if (PromptFormat.Placement == ImagePlacement.PatchTokens)
        {
            chunks.Add(new TokenChunk([PromptFormat.StartTokenId]));
            chunks.Add(new ImageChunk(image));
            chunks.Add(new TokenChunk([PromptFormat.EndTokenId]));
        }
        else
        {
            chunks.Add(new ImageChunk(image));
        }
    }

    private static void AddTokens(List<LlavaPromptChunk> chunks, int[] ids)
    {
        if (ids.Length > 0) chunks.Add(new TokenChunk(ids));
    }

    internal Tokenizer RequireTokenizer() => Tokenizer ?? throw new InvalidOperationException(
        $"{Path.GetFileName(Decoder.SourcePath)}: the model has no tokenizer (a GGUF file without tokenizer.ggml.* keys, or a Hugging Face folder without tokenizer.json); give token ids instead of text");

    /// <summary>A conversation on this model with its own KV cache.</summary>
    public LlavaSession CreateSession(LlavaSessionOptions? options = null) => new(this, options ?? new LlavaSessionOptions());

    public override string ToString() =>
        $"{Path.GetFileName(Decoder.SourcePath)} + {Path.GetFileName(Encoder.SourcePath ?? "encoder")}: {ImageTokenCount} positions per image, {PromptFormat}";

    public void Dispose()
    {
        GpuEncoder?.Dispose();
        Backend.Dispose();
        if (_ownsParts)
        {
            Encoder.Dispose();
            Decoder.Dispose();
        }
        _ownedPool?.Dispose();
    }
}
