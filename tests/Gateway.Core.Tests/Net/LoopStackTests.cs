using Gateway.Net;

namespace Gateway.Core.Tests.Net;

public sealed class LoopStackTests
{
    [Fact]
    public void Keeps_up_to_its_capacity_and_gives_back_the_last_kept_first()
    {
        var stack = new LoopStack<object>(2);
        Assert.False(stack.TryPop(out _));
        object a = new(), b = new(), c = new();
        Assert.True(stack.TryPush(a));
        Assert.True(stack.TryPush(b));
        Assert.False(stack.TryPush(c)); // full: the caller hands it to the shared pool
        Assert.True(stack.TryPop(out var first));
        Assert.Same(b, first);
        Assert.True(stack.TryPush(c));
        Assert.True(stack.TryPop(out var second));
        Assert.Same(c, second);
        Assert.True(stack.TryPop(out var third));
        Assert.Same(a, third);
        Assert.False(stack.TryPop(out _));
    }
}
