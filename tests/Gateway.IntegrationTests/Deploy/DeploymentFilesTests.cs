using YamlDotNet.RepresentationModel;

namespace Gateway.IntegrationTests.Deploy;

/// <summary>No Docker engine runs here, so the container files are checked for structure; the binary's behaviour is tested directly.</summary>
public sealed class DeploymentFilesTests
{
    private static readonly string Root = Path.GetFullPath(Path.Combine(AppContext.BaseDirectory, "../../../../.."));

    private static YamlMappingNode Compose()
    {
        var yaml = new YamlStream();
        using var reader = new StreamReader(Path.Combine(Root, "docker-compose.yml"));
        yaml.Load(reader);
        return (YamlMappingNode)yaml.Documents[0].RootNode;
    }

    private static YamlMappingNode Map(YamlNode node, string key) => (YamlMappingNode)((YamlMappingNode)node)[key];
    private static string Scalar(YamlNode node, string key) => ((YamlScalarNode)((YamlMappingNode)node)[key]).Value!;

    [Fact]
    public void Compose_runs_postgres_redis_a_one_shot_migration_the_simulator_and_the_gateway()
    {
        var services = Map(Compose(), "services");
        Assert.Equal(["postgres", "redis", "migrate", "simulator", "gateway"], services.Children.Keys.Select(k => ((YamlScalarNode)k).Value));

        var migrate = Map(services, "migrate");
        Assert.Equal(["migrate", "up"], ((YamlSequenceNode)migrate["command"]).Select(n => ((YamlScalarNode)n).Value));
        Assert.Equal("no", Scalar(migrate, "restart"));
        Assert.Equal("service_healthy", Scalar(Map(Map(migrate, "depends_on"), "postgres"), "condition"));

        var gateway = Map(services, "gateway");
        var dependsOn = Map(gateway, "depends_on");
        Assert.Equal("service_completed_successfully", Scalar(Map(dependsOn, "migrate"), "condition"));
        Assert.Equal("service_healthy", Scalar(Map(dependsOn, "redis"), "condition"));
        var env = Map(gateway, "environment");
        foreach (var name in new[] { "DATABASE_URL", "REDIS_URL", "ADMIN_API_KEY" }) Assert.False(string.IsNullOrEmpty(Scalar(env, name)));
        Assert.Equal(Scalar(Map(migrate, "environment"), "DATABASE_URL"), Scalar(env, "DATABASE_URL"));
        Assert.Contains("8080:8080", ((YamlSequenceNode)gateway["ports"]).Select(n => ((YamlScalarNode)n).Value));

        // The simulator answers where gateway.toml's backend points in the stack.
        var simulator = Map(services, "simulator");
        Assert.Contains("8000", ((YamlSequenceNode)simulator["command"]).Select(n => ((YamlScalarNode)n).Value));
    }

    [Fact]
    public void The_dockerfile_is_multi_stage_non_root_with_a_healthcheck()
    {
        var lines = File.ReadAllLines(Path.Combine(Root, "Dockerfile")).Where(l => !l.TrimStart().StartsWith('#')).ToArray();
        var froms = lines.Where(l => l.StartsWith("FROM ", StringComparison.Ordinal)).ToArray();
        Assert.Equal(2, froms.Length);
        Assert.Contains("/sdk:", froms[0]);
        Assert.Contains("runtime-deps", froms[1]);
        Assert.Contains("chiseled", froms[1]);
        Assert.Contains(lines, l => l.StartsWith("USER ", StringComparison.Ordinal) && !l.Contains("root"));
        Assert.Contains(lines, l => l.StartsWith("HEALTHCHECK ", StringComparison.Ordinal) && l.Contains("/health"));
        Assert.Contains(lines, l => l.Contains("dotnet publish src/Gateway/Gateway.csproj -c Release"));
        Assert.Contains(lines, l => l.StartsWith("ENTRYPOINT [\"/app/gateway\"]", StringComparison.Ordinal));
    }

    [Fact]
    public void The_systemd_unit_is_hardened_and_allows_ten_thousand_streams()
    {
        var unit = File.ReadAllLines(Path.Combine(Root, "deploy/systemd/gateway.service"));
        string Value(string key) => unit.Single(l => l.StartsWith(key + "=", StringComparison.Ordinal))[(key.Length + 1)..];
        Assert.Equal("yes", Value("DynamicUser"));
        Assert.Equal("yes", Value("NoNewPrivileges"));
        Assert.Equal("strict", Value("ProtectSystem"));
        Assert.True(long.Parse(Value("LimitNOFILE"), System.Globalization.CultureInfo.InvariantCulture) >= 20_000);
        Assert.StartsWith("/usr/local/bin/gateway serve", Value("ExecStart"));
    }
}
