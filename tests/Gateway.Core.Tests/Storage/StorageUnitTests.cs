using Gateway.Storage;
using Npgsql;

namespace Gateway.Tests.Storage;

public sealed class DatabaseUrlTests
{
    [Fact]
    public void Seed_style_url_becomes_a_connection_string()
    {
        var csb = new NpgsqlConnectionStringBuilder(
            DatabaseUrl.ToConnectionString("postgres://gateway:p%40ss@localhost:5433/gateway?sslmode=disable&application_name=gw"));
        Assert.Equal("localhost", csb.Host);
        Assert.Equal(5433, csb.Port);
        Assert.Equal("gateway", csb.Username);
        Assert.Equal("p@ss", csb.Password);
        Assert.Equal("gateway", csb.Database);
        Assert.Equal(SslMode.Disable, csb.SslMode);
        Assert.Equal("gw", csb.ApplicationName);
    }

    [Fact]
    public void Default_port_and_postgresql_scheme()
    {
        var csb = new NpgsqlConnectionStringBuilder(DatabaseUrl.ToConnectionString("postgresql://u@127.0.0.1/db"));
        Assert.Equal(5432, csb.Port);
        Assert.Equal("u", csb.Username);
        Assert.Null(csb.Password);
    }

    [Fact]
    public void Connection_strings_pass_through()
    {
        var csb = new NpgsqlConnectionStringBuilder(DatabaseUrl.ToConnectionString("Host=127.0.0.1;Port=6000;Database=x;Username=y"));
        Assert.Equal(6000, csb.Port);
        Assert.Equal("x", csb.Database);
    }

    [Fact]
    public void Data_sources_bound_connects_and_commands_unless_the_url_says_otherwise()
    {
        using (var ds = DatabaseUrl.CreateDataSource("postgres://u@127.0.0.1/db"))
        {
            var csb = new NpgsqlConnectionStringBuilder(ds.ConnectionString);
            Assert.Equal(DatabaseUrl.ConnectSeconds, csb.Timeout);
            Assert.Equal(DatabaseUrl.CommandSeconds, csb.CommandTimeout);
        }
        using (var ds = DatabaseUrl.CreateDataSource("Host=127.0.0.1;Database=x;Timeout=20;Command Timeout=45"))
        {
            var csb = new NpgsqlConnectionStringBuilder(ds.ConnectionString);
            Assert.Equal(20, csb.Timeout);
            Assert.Equal(45, csb.CommandTimeout);
        }
        using (var ds = DatabaseUrl.CreateDataSource("postgres://u@127.0.0.1/db?connect_timeout=3"))
            Assert.Equal(3, new NpgsqlConnectionStringBuilder(ds.ConnectionString).Timeout);
    }

    [Theory]
    [InlineData("postgres://")]
    [InlineData("postgres://h/db?sslmode=sometimes")]
    [InlineData("postgres://h/db?bogus=1")]
    [InlineData("not a connection string at all")]
    public void Bad_urls_are_format_errors(string url) => Assert.Throws<FormatException>(() => DatabaseUrl.ToConnectionString(url));
}

public sealed class StoreValidationTests
{
    [Theory]
    [InlineData("not-a-uuid")]
    [InlineData("")]
    [InlineData("123")]
    [InlineData("00000000-0000-0000-0000-00000000000g")]
    [InlineData("{00000000-0000-0000-0000-000000000000}")]
    public void Malformed_ids_are_not_found(string text)
    {
        var e = Assert.Throws<StoreException>(() => StoreValidation.ParseId(text, "model"));
        Assert.Equal(StoreErrorKind.NotFound, e.Kind);
    }

    [Fact]
    public void Well_formed_ids_parse()
    {
        var id = Guid.NewGuid();
        Assert.Equal(id, StoreValidation.ParseId(id.ToString("D"), "model"));
    }

    [Theory]
    [InlineData("http://127.0.0.1:8000/", "http://127.0.0.1:8000")]
    [InlineData("https://vllm.internal", "https://vllm.internal")]
    [InlineData("http://[::1]:8000", "http://[::1]:8000")]
    [InlineData("http://h:8000/prefix/", "http://h:8000/prefix")]
    public void Urls_are_normalized(string url, string expected) => Assert.Equal(expected, StoreValidation.Url(url));

    [Theory]
    [InlineData("file:///etc/passwd")]
    [InlineData("http://h:8000/?x=1")]
    [InlineData("http://user:pw@h:8000")]
    [InlineData("/relative")]
    [InlineData(" ")]
    public void Bad_urls_are_validation_errors(string url)
    {
        var e = Assert.Throws<StoreException>(() => StoreValidation.Url(url));
        Assert.Equal((StoreErrorKind.Validation, "url"), (e.Kind, e.Param));
    }
}
