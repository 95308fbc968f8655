using System.IO.Pipelines;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;

namespace Gateway.Http;

/// <summary>
/// The features of one request, fetched once. Kestrel's feature collection is the connection's protocol object, which implements
/// these features itself: a cast finds them without Get&lt;T&gt;'s generic virtual dispatch (a runtime lookup under Native AOT);
/// another server's collection falls back to Get&lt;T&gt;. Kestrel's current feature is the protocol object itself until something
/// calls Set, which nothing here does (a raw IHttpApplication, no middleware); a middleware that replaces features would need Get.
/// </summary>
public readonly struct Exchange
{
    public readonly IFeatureCollection Features;
    public readonly IHttpRequestFeature Request;
    public readonly IHttpResponseFeature Response;
    public readonly IHttpResponseBodyFeature ResponseBody;

    public Exchange(IFeatureCollection features)
    {
        Features = features;
        Request = features as IHttpRequestFeature ?? features.GetRequiredFeature<IHttpRequestFeature>();
        Response = features as IHttpResponseFeature ?? features.GetRequiredFeature<IHttpResponseFeature>();
        ResponseBody = features as IHttpResponseBodyFeature ?? features.GetRequiredFeature<IHttpResponseBodyFeature>();
    }

    public string Method => Request.Method;
    public string Path => Request.Path;
    public IHeaderDictionary RequestHeaders => Request.Headers;
    public IHeaderDictionary ResponseHeaders => Response.Headers;
    public PipeReader RequestBody => (Features as IRequestBodyPipeFeature ?? Features.GetRequiredFeature<IRequestBodyPipeFeature>()).Reader;
    public PipeWriter Writer => ResponseBody.Writer;
    /// <summary>The event loop that watches the client's connection (null on Kestrel's socket transport).</summary>
    internal Net.EventLoop? ConnectionLoop => Features.Get<Transport.IEventLoopFeature>()?.Loop;

    public CancellationToken RequestAborted =>
        (Features as IHttpRequestLifetimeFeature ?? Features.GetRequiredFeature<IHttpRequestLifetimeFeature>()).RequestAborted;

    /// <summary>
    /// Writes a complete response body of known length. The one write starts the response itself, so Kestrel puts the head and the
    /// body in one buffer under one lock (StartAsync is needed only before span writes, on a hand-built Kestrel).
    /// </summary>
    public ValueTask WriteBodyAsync(int status, string contentType, ReadOnlyMemory<byte> body)
    {
        Response.StatusCode = status;
        var headers = Response.Headers;
        headers.ContentType = contentType;
        headers.ContentLength = body.Length;
        if (body.IsEmpty) return new ValueTask(ResponseBody.StartAsync());
        var write = Writer.WriteAsync(body);
        if (!write.IsCompletedSuccessfully) return AwaitWrite(write);
        _ = write.Result;
        return default;
    }

    private static async ValueTask AwaitWrite(ValueTask<FlushResult> write) => await write.ConfigureAwait(false);
}
