using LlavaNative.Kernels.Cpu;
using LlavaNative.Model.Formats.Gguf;
using LlavaNative.Model.Llava;

namespace LlavaNative.Model.Vision;

/// <summary>
/// What LLaVA puts in front of the decoder for one image: the vision tower, then the projector.
/// Normalized pixels [3, S, S] → image embeddings [<see cref="ImageTokenCount"/>, <see cref="EmbeddingLength"/>]
/// that replace the image placeholder in the prompt. Buffers live as long as the encoder; after the first image,
/// <see cref="EncodeAndProject(ReadOnlySpan{float}, Span{float})"/> allocates nothing.
/// </summary>
public sealed unsafe class ImageEncoder : IDisposable
{
    private readonly IDisposable? _file;
    private readonly bool _ownsPool;

    public VisionEncoder Vision { get; }
    public Projector Projector { get; }
    public ComputeThreadPool Pool { get; }
    public string? SourcePath { get; }

    public VisionConfig VisionConfig => Vision.Config;
    public ProjectorConfig ProjectorConfig => Projector.Config;

    /// <summary>Embeddings per image (576 for LLaVA-1.5's CLIP-L/336, 729 for llava-interleave's SigLIP).</summary>
    public int ImageTokenCount => Vision.OutputTokenCount;

    /// <summary>Width of each embedding: the text model's hidden size.</summary>
    public int EmbeddingLength => Projector.Config.OutputSize;

    /// <summary>Floats one image has: 3 · ImageSize².</summary>
    public int PixelCount => Vision.PixelCount;

    /// <summary>Composes a tower and a projector; the projector's input must be the tower's hidden size.</summary>
    public ImageEncoder(VisionConfig visionConfig, VisionWeights visionWeights, ProjectorConfig projectorConfig, ProjectorWeights projectorWeights,
        ComputeThreadPool? pool = null, string? sourcePath = null, IDisposable? ownedFile = null)
    {
        if (projectorConfig.InputSize != visionConfig.HiddenSize)
            throw new ArgumentException($"the projector reads {projectorConfig.InputSize} features, the vision tower produces {visionConfig.HiddenSize}");
        _ownsPool = pool == null;
        Pool = pool ?? new ComputeThreadPool();
        try
        {
            Vision = new VisionEncoder(visionConfig, visionWeights, Pool);
            Projector = new Projector(projectorConfig, projectorWeights, visionConfig.OutputTokenCount, Pool);
        }
        catch
        {
            Vision?.Dispose();
            if (_ownsPool) Pool.Dispose();
            throw;
        }
        SourcePath = sourcePath;
        _file = ownedFile;
    }

    /// <summary>Opens an mmproj GGUF (llama.cpp layout: CLIP or SigLIP tower + LLaVA projector).</summary>
    public static ImageEncoder LoadGguf(string path, ComputeThreadPool? pool = null)
    {
        var file = GgufFile.Open(path);
        VisionWeights? visionWeights = null;
        ProjectorWeights? projectorWeights = null;
        try
        {
            var visionConfig = VisionConfig.FromGguf(file);
            var projectorConfig = ProjectorConfig.FromGguf(file, visionConfig.HiddenSize);
            visionWeights = VisionWeights.FromGguf(file, visionConfig);
            projectorWeights = ProjectorWeights.FromGguf(file, projectorConfig);
            return new ImageEncoder(visionConfig, visionWeights, projectorConfig, projectorWeights, pool, path,
                new OwnedResources(file, visionWeights, projectorWeights));
        }
        catch
        {
            visionWeights?.Dispose();
            projectorWeights?.Dispose();
            file.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Opens the image side of a Hugging Face LLaVA folder (see <see cref="LlavaHfLayout"/>): a llava-hf checkpoint
    /// (config.json <c>model_type: "llava"</c>, tower and projector under <c>vision_tower.vision_model.*</c> /
    /// <c>multi_modal_projector.*</c> or the new <c>model.</c>-prefixed names), or an original LLaVA checkpoint
    /// (<c>model.mm_projector.*</c>) whose CLIP tower is the separate checkpoint in <paramref name="visionTowerFolder"/>.
    /// Safetensors single or sharded, F32 / F16 / BF16: Linear weights are used in place in the mapped files, the
    /// rest converted once to F32. Same forward pass as <see cref="LoadGguf"/>; the tower runs only the blocks up
    /// to the selected hidden state. <see cref="ImageTokenCount"/> is the number of placeholders HF's processor
    /// expands each image into (checked against processor_config.json when the folder has one).
    /// </summary>
    public static ImageEncoder LoadHuggingFace(string folder, ComputeThreadPool? pool = null, string? visionTowerFolder = null)
    {
        var layout = LlavaHfLayout.Read(folder, visionTowerFolder);
        var opened = layout.OpenWeights();
        VisionWeights? visionWeights = null;
        ProjectorWeights? projectorWeights = null;
        try
        {
            visionWeights = VisionWeights.Bind(opened.TowerSource, opened.TowerNames, opened.Vision);
            projectorWeights = ProjectorWeights.Bind(opened.ProjectorSource, opened.ProjectorNames, opened.Projector, layout.ProjectorBias);
            return new ImageEncoder(opened.Vision, visionWeights, opened.Projector, projectorWeights, pool, folder,
                new OwnedResources(opened, visionWeights, projectorWeights))
            {
                HuggingFaceLayout = layout,
            };
        }
        catch
        {
            visionWeights?.Dispose();
            projectorWeights?.Dispose();
            opened.Dispose();
            throw;
        }
    }

    /// <summary>What the Hugging Face folder's config files said (null when loaded from an mmproj GGUF).</summary>
    public LlavaHfLayout? HuggingFaceLayout { get; private init; }

    /// <summary>
    /// Encodes and projects one image: <paramref name="pixels"/> [3, S, S] normalized planar RGB →
    /// <paramref name="destination"/> [ImageTokenCount, EmbeddingLength]. Allocates nothing.
    /// </summary>
    public void EncodeAndProject(ReadOnlySpan<float> pixels, Span<float> destination)
    {
        Vision.CheckPixels(pixels.Length);
        int count = ImageTokenCount * EmbeddingLength;
        if (destination.Length < count) throw new ArgumentException($"destination holds {destination.Length} floats, needs {count} ({ImageTokenCount} × {EmbeddingLength})", nameof(destination));
        fixed (float* p = pixels)
        fixed (float* output = destination)
        {
            lock (_encodeLock) // the tower's and projector's activation buffers are the encoder's: one image at a time
            {
                float* features = Vision.Forward(p);
                Projector.Project(features, ImageTokenCount, output);
            }
        }
    }

    /// <summary>As <see cref="EncodeAndProject(ReadOnlySpan{float}, Span{float})"/> into a new array [ImageTokenCount, EmbeddingLength].</summary>
    public float[] EncodeAndProject(ReadOnlySpan<float> pixels)
    {
        var result = new float[ImageTokenCount * EmbeddingLength];
        EncodeAndProject(pixels, result);
        return result;
    }

    /// <summary>
    /// The tower's selected features [ImageTokenCount, HiddenSize] before the projector: a view of the encoder's own
    /// buffer, valid until the next call on any thread (copy it before sharing the encoder).
    /// </summary>
    public ReadOnlySpan<float> EncodeFeatures(ReadOnlySpan<float> pixels)
    {
        lock (_encodeLock) return Vision.Encode(pixels);
    }

    private readonly object _encodeLock = new();

    public void Dispose()
    {
        Projector.Dispose();
        Vision.Dispose();
        _file?.Dispose();
        if (_ownsPool) Pool.Dispose();
    }

    /// <summary>The mapped file(s) and the converted tensors that point into them or beside them, released together.</summary>
    private sealed class OwnedResources(IDisposable file, VisionWeights vision, ProjectorWeights projector) : IDisposable
    {
        public void Dispose()
        {
            vision.Dispose();
            projector.Dispose();
            file.Dispose();
        }
    }
}
