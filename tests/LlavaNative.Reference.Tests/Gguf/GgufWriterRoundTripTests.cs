using System.Runtime.InteropServices;
using LlavaNative.Kernels.Tensors;
using LlavaNative.Model.Formats.Gguf;
using LlavaNative.TestSupport.LlamaCpp;
using Xunit;

namespace LlavaNative.Reference.Tests.Gguf;

/// <summary>
/// Files written by <see cref="GgufWriter"/> are read back by ggml's own GGUF reader (libggml-base.so): every
/// metadata type, every value bit-exact, tensor infos, offsets, alignment and data bytes.
/// </summary>
public sealed class GgufWriterRoundTripTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("llavanative-gguf-writer-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static byte[] RandomBytes(int n, int seed)
    {
        var b = new byte[n];
        new Random(seed).NextBytes(b);
        return b;
    }

    [Fact]
    public void EveryScalarAndArrayType_ReadsBackExactlyInGgml()
    {
        var w = new GgufWriter();
        w.SetUInt8("t.u8", 0xFE);
        w.SetInt8("t.i8", -128);
        w.SetUInt16("t.u16", 0xBEEF);
        w.SetInt16("t.i16", -12345);
        w.SetUInt32("t.u32", 0xDEADBEEF);
        w.SetInt32("t.i32", int.MinValue + 7);
        w.SetFloat32("t.f32", BitConverter.Int32BitsToSingle(0x3EAAAAAB)); // 1/3, checked bit for bit
        w.SetBool("t.bool.true", true);
        w.SetBool("t.bool.false", false);
        w.SetString("t.str", "Grüße, 世界 ▁ \n\t\"");
        w.SetString("t.str.empty", "");
        w.SetUInt64("t.u64", 0xFEDCBA9876543210UL);
        w.SetInt64("t.i64", long.MinValue + 3);
        w.SetFloat64("t.f64", Math.PI);
        w.SetArray("a.u8", new byte[] { 0, 1, 255 });
        w.SetArray("a.i8", new sbyte[] { -128, 0, 127 });
        w.SetArray("a.u16", new ushort[] { 1, 65535 });
        w.SetArray("a.i16", new short[] { -32768, 32767, 5 });
        w.SetArray("a.u32", new uint[] { 0, uint.MaxValue });
        w.SetArray("a.i32", Enumerable.Range(-500, 1000).ToArray());
        w.SetArray("a.f32", new[] { -0.0f, 1e-38f, float.MaxValue, 3.25f });
        w.SetArray("a.bool", new[] { true, false, true, true });
        w.SetArray("a.str", new[] { "a", "", "▁hello", "<0x0A>", "日本" });
        w.SetArray("a.u64", new[] { ulong.MaxValue, 0UL });
        w.SetArray("a.i64", new[] { long.MinValue, -1L, long.MaxValue });
        w.SetArray("a.f64", new[] { double.Epsilon, -2.5, 1e300 });
        w.SetArray("a.empty", Array.Empty<int>());
        w.SetUInt32("t.replaced", 1);
        w.SetUInt32("t.replaced", 2); // replaced in place: still one key

        // Tensors of several encodings and sizes that are not multiples of 32 bytes, so padding is exercised.
        var tensors = new (string Name, TensorType Type, long[] Ne)[]
        {
            ("f32.vector", TensorType.F32, [7]),
            ("f16.matrix", TensorType.F16, [5, 3]),
            ("q8_0.matrix", TensorType.Q8_0, [64, 3]),
            ("q4_k.matrix", TensorType.Q4_K, [256, 2]),
            ("q6_k.cube", TensorType.Q6_K, [256, 1, 3]),
            ("bf16.4d", TensorType.BF16, [3, 1, 2, 2]),
            ("q5_1.matrix", TensorType.Q5_1, [32, 5]),
        };
        var data = new Dictionary<string, byte[]>();
        int seed = 1;
        foreach (var (name, type, ne) in tensors)
        {
            byte[] bytes = RandomBytes((int)GgufWriter.TensorByteSize(type, ne), seed++);
            data[name] = bytes;
            w.AddTensor(name, type, ne, bytes);
        }

        string path = Path.Combine(_dir, "all-types.gguf");
        w.WriteTo(path);

        using var g = GgmlGgufReader.Open(path);
        Assert.Equal(3u, g.Version);
        Assert.Equal(32, g.Alignment);
        Assert.Equal(w.Metadata.Count, g.KeyCount);
        for (int i = 0; i < w.Metadata.Count; i++)
            Assert.Equal(w.Metadata[i].Key, g.Key(i)); // file order = insertion order

        long K(string key)
        {
            long id = g.FindKey(key);
            Assert.True(id >= 0, $"ggml does not see key '{key}'");
            return id;
        }

        Assert.Equal(0xFE, g.GetUInt8(K("t.u8")));
        Assert.Equal(-128, g.GetInt8(K("t.i8")));
        Assert.Equal(0xBEEF, g.GetUInt16(K("t.u16")));
        Assert.Equal(-12345, g.GetInt16(K("t.i16")));
        Assert.Equal(0xDEADBEEF, g.GetUInt32(K("t.u32")));
        Assert.Equal(int.MinValue + 7, g.GetInt32(K("t.i32")));
        Assert.Equal(0x3EAAAAAB, BitConverter.SingleToInt32Bits(g.GetFloat32(K("t.f32"))));
        Assert.True(g.GetBool(K("t.bool.true")));
        Assert.False(g.GetBool(K("t.bool.false")));
        Assert.Equal("Grüße, 世界 ▁ \n\t\"", g.GetString(K("t.str")));
        Assert.Equal("", g.GetString(K("t.str.empty")));
        Assert.Equal(0xFEDCBA9876543210UL, g.GetUInt64(K("t.u64")));
        Assert.Equal(long.MinValue + 3, g.GetInt64(K("t.i64")));
        Assert.Equal(BitConverter.DoubleToInt64Bits(Math.PI), BitConverter.DoubleToInt64Bits(g.GetFloat64(K("t.f64"))));
        Assert.Equal(2u, g.GetUInt32(K("t.replaced")));

        // gguf_type ids of ggml match the ones the writer declares.
        foreach (var (key, value) in w.Metadata)
        {
            Assert.Equal((int)value.Type, g.KeyType(K(key)));
            if (value.Value is GgufArray array)
            {
                Assert.Equal((int)array.ElementType, g.ArrayType(K(key)));
                Assert.Equal(array.Length, g.ArrayLength(K(key)));
            }
        }

        Assert.Equal(new byte[] { 0, 1, 255 }, g.GetArray<byte>(K("a.u8")));
        Assert.Equal(new sbyte[] { -128, 0, 127 }, g.GetArray<sbyte>(K("a.i8")));
        Assert.Equal(new ushort[] { 1, 65535 }, g.GetArray<ushort>(K("a.u16")));
        Assert.Equal(new short[] { -32768, 32767, 5 }, g.GetArray<short>(K("a.i16")));
        Assert.Equal(new uint[] { 0, uint.MaxValue }, g.GetArray<uint>(K("a.u32")));
        Assert.Equal(Enumerable.Range(-500, 1000).ToArray(), g.GetArray<int>(K("a.i32")));
        Assert.Equal(new[] { -0.0f, 1e-38f, float.MaxValue, 3.25f }.Select(BitConverter.SingleToInt32Bits),
            g.GetArray<float>(K("a.f32")).Select(BitConverter.SingleToInt32Bits));
        Assert.Equal(new byte[] { 1, 0, 1, 1 }, g.GetArray<byte>(K("a.bool"))); // ggml keeps bools as bytes
        string[] strings = ["a", "", "▁hello", "<0x0A>", "日本"];
        for (int i = 0; i < strings.Length; i++)
            Assert.Equal(strings[i], g.GetArrayString(K("a.str"), i));
        Assert.Equal(new[] { ulong.MaxValue, 0UL }, g.GetArray<ulong>(K("a.u64")));
        Assert.Equal(new[] { long.MinValue, -1L, long.MaxValue }, g.GetArray<long>(K("a.i64")));
        Assert.Equal(new[] { double.Epsilon, -2.5, 1e300 }.Select(BitConverter.DoubleToInt64Bits),
            g.GetArray<double>(K("a.f64")).Select(BitConverter.DoubleToInt64Bits));
        Assert.Equal(0, g.ArrayLength(K("a.empty")));

        // Tensors: infos, offsets relative to an aligned data section, and the bytes themselves.
        Assert.Equal(tensors.Length, g.TensorCount);
        Assert.Equal(0, g.DataOffset % 32);
        byte[] file = File.ReadAllBytes(path);
        long expectedOffset = 0;
        for (int i = 0; i < tensors.Length; i++)
        {
            var (name, type, ne) = tensors[i];
            long id = g.FindTensor(name);
            Assert.Equal(i, id);
            Assert.Equal(name, g.TensorName(id));
            Assert.Equal((int)type, g.TensorType(id));
            long[] ne4 = g.TensorDimensions(id);
            Assert.Equal(ne.Concat(Enumerable.Repeat(1L, 4 - ne.Length)), ne4);
            Assert.Equal(data[name].Length, g.TensorSize(id));
            long offset = g.TensorOffset(id);
            Assert.Equal(expectedOffset, offset);
            Assert.Equal(0, offset % 32);
            Assert.Equal(data[name], file.AsSpan((int)(g.DataOffset + offset), data[name].Length).ToArray());
            expectedOffset += (data[name].Length + 31) / 32 * 32;
        }
        Assert.Equal(g.DataOffset + expectedOffset, file.Length);
    }

    [Fact]
    public void GeneralAlignment_IsHonouredForDataSectionAndEveryTensor()
    {
        var w = new GgufWriter();
        w.SetUInt32(GgufWriter.AlignmentKey, 256);
        w.SetString("general.architecture", "test");
        byte[] a = RandomBytes(4 * 3, 1), b = RandomBytes(34 * 2, 2);
        w.AddTensor("a", TensorType.F32, [3], a);
        w.AddTensor("b", TensorType.Q8_0, [32, 2], b);
        Assert.Equal(256, w.Alignment);
        string path = Path.Combine(_dir, "aligned.gguf");
        w.WriteTo(path);

        using var g = GgmlGgufReader.Open(path);
        Assert.Equal(256, g.Alignment);
        Assert.Equal(256u, g.GetUInt32(g.FindKey(GgufWriter.AlignmentKey)));
        Assert.Equal(0, g.DataOffset % 256);
        Assert.Equal(0, g.TensorOffset(g.FindTensor("a")));
        Assert.Equal(256, g.TensorOffset(g.FindTensor("b")));
        byte[] file = File.ReadAllBytes(path);
        Assert.Equal(b, file.AsSpan((int)g.DataOffset + 256, b.Length).ToArray());
    }

    [Fact]
    public void StreamedTensor_IsWrittenInPlace_AndAWrongByteCountFails()
    {
        float[] values = Enumerable.Range(0, 48).Select(i => i * 0.5f - 3f).ToArray();
        var w = new GgufWriter();
        w.AddTensor("first", TensorType.F32, [1], new byte[4]);
        w.AddTensor("streamed", TensorType.F32, [16, 3], s =>
        {
            // Written in three row-sized pieces, as a converter would.
            for (int r = 0; r < 3; r++)
                s.Write(MemoryMarshal.AsBytes(values.AsSpan(r * 16, 16)));
        });
        string path = Path.Combine(_dir, "streamed.gguf");
        w.WriteTo(path);
        using (var g = GgmlGgufReader.Open(path))
        {
            long id = g.FindTensor("streamed");
            Assert.Equal(32, g.TensorOffset(id));
            byte[] file = File.ReadAllBytes(path);
            float[] back = MemoryMarshal.Cast<byte, float>(file.AsSpan((int)(g.DataOffset + 32), 48 * 4)).ToArray();
            Assert.Equal(values, back);
        }

        var tooShort = new GgufWriter();
        tooShort.AddTensor("t", TensorType.F32, [4], s => s.Write(new byte[12]));
        string bad = Path.Combine(_dir, "bad.gguf");
        var e = Assert.Throws<InvalidOperationException>(() => tooShort.WriteTo(bad));
        Assert.Contains("'t'", e.Message);
        Assert.False(File.Exists(bad)); // a failed write leaves no file behind
        Assert.Empty(Directory.GetFiles(_dir, "*.partial"));

        var tooLong = new GgufWriter();
        tooLong.AddTensor("t", TensorType.F32, [4], s => s.Write(new byte[20]));
        Assert.Throws<InvalidOperationException>(() => tooLong.WriteTo(bad));
    }

    [Fact]
    public void NestedArrays_HaveTheSpecifiedByteLayout()
    {
        // ggml's reader does not support nested arrays, so the layout is checked against the GGUF spec as
        // llama.cpp's gguf-py implements it (gguf_writer.py _pack_val / gguf_reader.py _get_field_parts): an
        // array value is u32 element type, u64 count, then the elements *without* a per-element type tag; a
        // nested element is therefore again u32 element type, u64 count, elements. ggml must at least
        // recognise the outer array header.
        var w = new GgufWriter();
        w.SetArray("n", new[]
        {
            new GgufArray(GgufValueType.Int32, new[] { 1, -2 }),
            new GgufArray(GgufValueType.String, new[] { "xy" }),
            new GgufArray(GgufValueType.Array, new[] { new GgufArray(GgufValueType.UInt8, new byte[] { 7 }) }),
        });
        using var ms = new MemoryStream();
        w.WriteTo(ms);

        var expected = new List<byte>();
        void U32(uint v) => expected.AddRange(BitConverter.GetBytes(v));
        void U64(ulong v) => expected.AddRange(BitConverter.GetBytes(v));
        expected.AddRange("GGUF"u8.ToArray());
        U32(3); U64(0); U64(1);                       // version, tensor count, kv count
        U64(1); expected.Add((byte)'n');              // key
        U32(9); U32(9); U64(3);                       // array of 3 arrays
        U32(5); U64(2); U32(1); U32(unchecked((uint)-2));          // [int32: 1, -2]
        U32(8); U64(1); U64(2); expected.AddRange("xy"u8.ToArray()); // [string: "xy"]
        U32(9); U64(1); U32(0); U64(1); expected.Add(7);             // [[uint8: 7]]
        // the (empty) data section still starts aligned, as ggml's own writer does it
        while (expected.Count % 32 != 0)
            expected.Add(0);
        Assert.Equal(expected.ToArray(), ms.ToArray());

        string path = Path.Combine(_dir, "nested.gguf");
        File.WriteAllBytes(path, ms.ToArray());
        var e = Assert.Throws<InvalidOperationException>(() => GgmlGgufReader.Open(path));
        Assert.Contains("key 'n' has invalid GGUF type 9", e.Message);

        // The engine's reader (written separately, from the same spec) gets the structure back.
        using var ours = GgufFile.Open(path);
        var items = (GgufArray[])((GgufArray)ours.GetValue("n").Value).Items;
        Assert.Equal(new[] { 1, -2 }, (int[])items[0].Items);
        Assert.Equal(new[] { "xy" }, (string[])items[1].Items);
        Assert.Equal(new byte[] { 7 }, (byte[])((GgufArray[])items[2].Items)[0].Items);
    }

    [Fact]
    public void InvalidInput_IsRejectedWithMessagesNamingTheProblem()
    {
        var w = new GgufWriter();
        Assert.Contains("power of two", Assert.Throws<ArgumentException>(() => w.SetUInt32(GgufWriter.AlignmentKey, 48)).Message);
        Assert.Contains("UInt32", Assert.Throws<ArgumentException>(() => w.SetUInt64(GgufWriter.AlignmentKey, 64)).Message);
        Assert.Contains("declared Int32 but holds UInt32",
            Assert.Throws<ArgumentException>(() => w.Set("k", new GgufValue(GgufValueType.Int32, 5u))).Message);
        Assert.Contains("array of Float32",
            Assert.Throws<ArgumentException>(() => w.SetArray("k", new GgufArray(GgufValueType.Float32, new int[2]))).Message);
        Assert.Contains("block size 32",
            Assert.Throws<ArgumentException>(() => w.AddTensor("q", TensorType.Q4_0, [48, 2], new byte[54])).Message);
        Assert.Contains("needs 24 bytes",
            Assert.Throws<ArgumentException>(() => w.AddTensor("f", TensorType.F32, [3, 2], new byte[20])).Message);
        Assert.Contains("GGML_MAX_NAME",
            Assert.Throws<ArgumentException>(() => w.AddTensor(new string('x', 64), TensorType.F32, [1], new byte[4])).Message);
        Assert.Contains("1 to 4",
            Assert.Throws<ArgumentException>(() => w.AddTensor("d", TensorType.F32, [1, 1, 1, 1, 1], new byte[4])).Message);
        w.AddTensor("dup", TensorType.F32, [1], new byte[4]);
        Assert.Contains("already added", Assert.Throws<ArgumentException>(() => w.AddTensor("dup", TensorType.F32, [1], new byte[4])).Message);
        Assert.Equal(1, w.TensorCount);
        Assert.Empty(w.Metadata);
    }
}
