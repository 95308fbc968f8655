using System.Globalization;
using System.Text;

namespace Gateway.Testing;

/// <summary>
/// A small parser of the Prometheus text exposition format (0.0.4): <c># TYPE</c> lines and samples
/// <c>name{label="value",…} value</c>, with label value escapes (\\, \", \n). Enough for tests to read a real scrape.
/// </summary>
public sealed class PrometheusText
{
    public sealed record Sample(string Name, IReadOnlyDictionary<string, string> Labels, double Value);

    public List<Sample> Samples { get; } = [];
    /// <summary>Metric family name → type (counter, gauge, histogram, …).</summary>
    public Dictionary<string, string> Types { get; } = new(StringComparer.Ordinal);

    public static PrometheusText Parse(string text)
    {
        var result = new PrometheusText();
        foreach (var raw in text.Split('\n'))
        {
            var line = raw.TrimEnd('\r');
            if (line.Length == 0) continue;
            if (line.StartsWith("# TYPE ", StringComparison.Ordinal))
            {
                var parts = line[7..].Split(' ', 2);
                result.Types[parts[0]] = parts.Length > 1 ? parts[1].Trim() : "untyped";
                continue;
            }
            if (line[0] == '#') continue;
            result.Samples.Add(ParseSample(line));
        }
        return result;
    }

    private static Sample ParseSample(string line)
    {
        int i = 0;
        while (i < line.Length && line[i] != '{' && line[i] != ' ') i++;
        var name = line[..i];
        var labels = new Dictionary<string, string>(StringComparer.Ordinal);
        if (i < line.Length && line[i] == '{')
        {
            i++;
            while (line[i] != '}')
            {
                int eq = line.IndexOf('=', i);
                var key = line[i..eq].Trim();
                if (line[eq + 1] != '"') throw new FormatException($"label value not quoted: {line}");
                var value = new StringBuilder();
                int j = eq + 2;
                for (; line[j] != '"'; j++)
                {
                    if (line[j] == '\\')
                    {
                        j++;
                        value.Append(line[j] switch { 'n' => '\n', var c => c });
                    }
                    else value.Append(line[j]);
                }
                labels[key] = value.ToString();
                i = j + 1;
                if (line[i] == ',') i++;
            }
            i++;
        }
        var rest = line[i..].Trim().Split(' ');
        var number = rest[0] switch { "+Inf" => double.PositiveInfinity, "-Inf" => double.NegativeInfinity, "NaN" => double.NaN, var v => double.Parse(v, CultureInfo.InvariantCulture) };
        return new Sample(name, labels, number);
    }

    /// <summary>The sum of every sample named <paramref name="name"/> whose labels include all of <paramref name="labels"/> (0 when none).</summary>
    public double Value(string name, params (string Key, string Value)[] labels)
    {
        double sum = 0;
        foreach (var s in Samples)
            if (s.Name == name && Matches(s, labels)) sum += s.Value;
        return sum;
    }

    public bool Has(string name, params (string Key, string Value)[] labels)
    {
        foreach (var s in Samples)
            if (s.Name == name && Matches(s, labels)) return true;
        return false;
    }

    private static bool Matches(Sample s, (string Key, string Value)[] labels)
    {
        foreach (var (k, v) in labels)
            if (!s.Labels.TryGetValue(k, out var actual) || actual != v) return false;
        return true;
    }
}
