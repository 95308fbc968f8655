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
    public CancellationToken RequestAborted =>
        (Features as IHttpRequestLifetimeFeature ?? Features.GetRequiredFeature<IHttpRequestLifetimeFeature>()).RequestAborted;

    /// <summary>Writes a complete response body of known length. StartAsync must precede span writes on a hand-built Kestrel.</summary>
    public async ValueTask WriteBodyAsync(int status, string contentType, ReadOnlyMemory<byte> body)
    {
        Response.StatusCode = status;
        var headers = Response.Headers;
        headers.ContentType = contentType;
        headers.ContentLength = body.Length;
        await ResponseBody.StartAsync().ConfigureAwait(false);
        if (body.Length > 0) await Writer.WriteAsync(body).ConfigureAwait(false);
    }
}
