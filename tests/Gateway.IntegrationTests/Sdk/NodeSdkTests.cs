using System.Diagnostics;
using Gateway.IntegrationTests.Proxy;
using Gateway.Testing;
using Xunit.Abstractions;

namespace Gateway.IntegrationTests.Sdk;

/// <summary>The official OpenAI Node SDK (installed by the test from npm) works against the gateway unchanged.</summary>
[Collection("gateway")]
public sealed class NodeSdkTests(GatewayFixture fx, ITestOutputHelper output)
{
    [Fact]
    public async Task The_openai_node_sdk_works_unchanged()
    {
        fx.ResetSimulator();
        var dir = Path.Combine(AppContext.BaseDirectory, "Sdk", "node");
        if (!Directory.Exists(Path.Combine(dir, "node_modules", "openai")))
        {
            var install = await Run("npm", "install --no-audit --no-fund --loglevel=error", dir, TimeSpan.FromMinutes(3));
            Assert.True(install.ExitCode == 0, "npm install failed: " + install.Output);
        }
        var result = await Run("node", $"sdk-check.mjs {fx.BaseUrl}/v1 {GatewayFixture.Key} {GatewayFixture.OtherModelKey}", dir, TimeSpan.FromMinutes(2));
        output.WriteLine(result.Output);
        Assert.True(result.ExitCode == 0, result.Output);
        Assert.Contains("\"ok\":true", result.Output);
        foreach (var check in new[] { "chat", "chat stream without usage", "chat stream with include_usage", "completions", "embeddings float",
                     "embeddings base64", "models list", "models retrieve", "401 AuthenticationError", "403 PermissionDeniedError", "404 NotFoundError", "400 BadRequestError" })
            Assert.Contains($"\"{check}\"", result.Output);
    }

    private static async Task<(int ExitCode, string Output)> Run(string file, string args, string dir, TimeSpan timeout)
    {
        var psi = new ProcessStartInfo(file, args) { WorkingDirectory = dir, RedirectStandardOutput = true, RedirectStandardError = true };
        using var process = Process.Start(psi)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var cts = new CancellationTokenSource(timeout);
        try { await process.WaitForExitAsync(cts.Token); }
        catch (OperationCanceledException) { process.Kill(entireProcessTree: true); return (-1, $"{file} timed out\n{await stdout}\n{await stderr}"); }
        return (process.ExitCode, (await stdout) + (await stderr));
    }
}
