namespace LlavaNative.Model.Generation;

/// <summary>
/// Token sampling settings. Defaults follow llama.cpp's CLI: temperature 0.8, top-k 40, top-p 0.95,
/// min-p 0.05, no repetition penalty. Temperature ≤ 0 means greedy (argmax).
/// </summary>
public sealed record SamplingOptions
{
    public float Temperature { get; init; } = 0.8f;
    /// <summary>Keep the K most likely tokens (≤ 0: all).</summary>
    public int TopK { get; init; } = 40;
    /// <summary>Keep the smallest set whose probability reaches P (≥ 1: all).</summary>
    public float TopP { get; init; } = 0.95f;
    /// <summary>Drop tokens whose probability is below MinP × the top probability (≤ 0: off).</summary>
    public float MinP { get; init; } = 0.05f;
    /// <summary>Penalty for tokens among the last <see cref="RepeatLastN"/> (1: off). Positive logits are divided, negative multiplied.</summary>
    public float RepeatPenalty { get; init; } = 1.0f;
    public int RepeatLastN { get; init; } = 64;
    /// <summary>Random seed; null picks one.</summary>
    public ulong? Seed { get; init; }

    public static SamplingOptions Greedy => new() { Temperature = 0 };

    public void Validate()
    {
        if (float.IsNaN(Temperature)) throw new ArgumentException("temperature is NaN");
        if (TopP is < 0 or > 1 || float.IsNaN(TopP)) throw new ArgumentException($"top-p must be in [0, 1], got {TopP}");
        if (MinP is < 0 or > 1 || float.IsNaN(MinP)) throw new ArgumentException($"min-p must be in [0, 1], got {MinP}");
        if (RepeatPenalty <= 0 || float.IsNaN(RepeatPenalty)) throw new ArgumentException($"repeat penalty must be positive, got {RepeatPenalty}");
        if (RepeatLastN < 0) throw new ArgumentException($"repeat-last-n must be ≥ 0, got {RepeatLastN}");
    }
}
