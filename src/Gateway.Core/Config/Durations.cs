using System.Globalization;

namespace Gateway.Config;

/// <summary>Go-style durations as the seed writes them: "500ms", "30s", "5m", "1h", "1m30s".</summary>
public static class Durations
{
    public static bool TryParse(string text, out TimeSpan value)
    {
        value = TimeSpan.Zero;
        var s = text.AsSpan().Trim();
        if (s.IsEmpty) return false;
        if (s is "0") return true;
        double totalMs = 0;
        while (!s.IsEmpty)
        {
            int i = 0;
            while (i < s.Length && (char.IsAsciiDigit(s[i]) || s[i] == '.')) i++;
            if (i == 0 || !double.TryParse(s[..i], NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out var number)) return false;
            s = s[i..];
            int j = 0;
            while (j < s.Length && char.IsAsciiLetter(s[j])) j++;
            double unitMs = s[..j] switch
            {
                "ms" => 1, "s" => 1000, "m" => 60_000, "h" => 3_600_000,
                "us" or "µs" => 0.001,
                _ => -1,
            };
            if (unitMs < 0) return false;
            totalMs += number * unitMs;
            s = s[j..];
        }
        value = TimeSpan.FromMilliseconds(totalMs);
        return true;
    }

    /// <summary>Formats like the rate-limit headers want: "45s", "1m4s", "250ms".</summary>
    public static string Format(TimeSpan value)
    {
        if (value < TimeSpan.FromSeconds(1)) return $"{(int)value.TotalMilliseconds}ms";
        var minutes = (int)value.TotalMinutes;
        var seconds = value.Seconds;
        return minutes > 0 ? (seconds > 0 ? $"{minutes}m{seconds}s" : $"{minutes}m") : $"{seconds}s";
    }
}
