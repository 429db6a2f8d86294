using LlavaNative.Model.Tokenizers;
using Xunit;

namespace LlavaNative.Tests.Tokenizers;

public class BigramQueueTests
{
    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(65)]
    [InlineData(5000)]
    public void Pops_InKeyOrder_LikeASortedList_WithInterleavedPushes(int n)
    {
        var random = new Random(n);
        var queue = new BigramQueue();
        var reference = new List<long>();
        var popped = new List<long>();
        for (int i = 0; i < n; i++)
        {
            long key = ((long)random.Next(-50, 50) << 32) | (uint)random.Next();
            queue.Push(new Bigram { Key = key, Left = i });
            reference.Add(key);
            if (random.Next(3) == 0 && queue.TryPop(out Bigram top))
            {
                long min = reference.Min();
                Assert.Equal(min, top.Key);
                reference.Remove(min);
            }
        }
        while (queue.TryPop(out Bigram top))
            popped.Add(top.Key);
        reference.Sort();
        Assert.Equal(reference, popped);
        Assert.Equal(0, queue.Count);
    }
}
