using System.Globalization;
using System.Security;
using System.Text;

namespace Gateway.Load;

/// <summary>One line of a plot: a name, a colour and one y per x (NaN = no point there).</summary>
internal sealed record Series(string Name, string Color, IReadOnlyList<double> Values, bool Dashed = false);

/// <summary>
/// A line chart as a standalone SVG, written by hand (no packages, AOT-trivial). X is categorical, one evenly spaced slot per
/// load step labelled with its value: sweep steps usually double, and equal spacing reads better than a linear axis that
/// crowds the low steps. Y is linear from 0 to a rounded maximum; values below 0 (a slightly negative overhead is noise) are drawn at 0.
/// </summary>
internal static class SvgPlot
{
    private const int Width = 720, Height = 420, Left = 70, Right = 170, Top = 40, Bottom = 60;

    public static string Render(string title, string xLabel, string yLabel, IReadOnlyList<double> xs, IReadOnlyList<Series> series)
    {
        var plotW = Width - Left - Right;
        var plotH = Height - Top - Bottom;
        var max = series.SelectMany(s => s.Values).Where(v => !double.IsNaN(v) && !double.IsInfinity(v)).DefaultIfEmpty(0).Max();
        var yMax = NiceCeiling(Math.Max(max, 1e-9));
        double X(int i) => Left + (xs.Count == 1 ? plotW / 2.0 : plotW * i / (double)(xs.Count - 1));
        double Y(double v) => Top + plotH - plotH * Math.Clamp(v, 0, yMax) / yMax;

        var sb = new StringBuilder();
        sb.Append(CultureInfo.InvariantCulture, $"""<svg xmlns="http://www.w3.org/2000/svg" width="{Width}" height="{Height}" viewBox="0 0 {Width} {Height}" font-family="sans-serif" font-size="12">""").Append('\n');
        sb.Append(CultureInfo.InvariantCulture, $"""<rect width="{Width}" height="{Height}" fill="white"/>""").Append('\n');
        sb.Append(CultureInfo.InvariantCulture, $"""<text x="{Width / 2}" y="22" text-anchor="middle" font-size="15">{Esc(title)}</text>""").Append('\n');

        // Grid and y ticks: five intervals.
        for (var t = 0; t <= 5; t++)
        {
            var v = yMax * t / 5;
            var y = Y(v);
            sb.Append(CultureInfo.InvariantCulture, $"""<line x1="{Left}" y1="{y:F1}" x2="{Left + plotW}" y2="{y:F1}" stroke="#ddd"/>""").Append('\n');
            sb.Append(CultureInfo.InvariantCulture, $"""<text x="{Left - 6}" y="{y + 4:F1}" text-anchor="end">{Esc(Num(v))}</text>""").Append('\n');
        }
        for (var i = 0; i < xs.Count; i++)
            sb.Append(CultureInfo.InvariantCulture, $"""<text x="{X(i):F1}" y="{Top + plotH + 18}" text-anchor="middle">{Esc(Num(xs[i]))}</text>""").Append('\n');
        sb.Append(CultureInfo.InvariantCulture, $"""<line x1="{Left}" y1="{Top + plotH}" x2="{Left + plotW}" y2="{Top + plotH}" stroke="black"/>""").Append('\n');
        sb.Append(CultureInfo.InvariantCulture, $"""<line x1="{Left}" y1="{Top}" x2="{Left}" y2="{Top + plotH}" stroke="black"/>""").Append('\n');
        sb.Append(CultureInfo.InvariantCulture, $"""<text x="{Left + plotW / 2}" y="{Height - 15}" text-anchor="middle">{Esc(xLabel)}</text>""").Append('\n');
        sb.Append(CultureInfo.InvariantCulture, $"""<text x="16" y="{Top + plotH / 2}" text-anchor="middle" transform="rotate(-90 16 {Top + plotH / 2})">{Esc(yLabel)}</text>""").Append('\n');

        for (var s = 0; s < series.Count; s++)
        {
            var line = series[s];
            var points = new StringBuilder();
            for (var i = 0; i < Math.Min(xs.Count, line.Values.Count); i++)
            {
                var v = line.Values[i];
                if (double.IsNaN(v) || double.IsInfinity(v)) continue;
                points.Append(CultureInfo.InvariantCulture, $"{X(i):F1},{Y(v):F1} ");
                sb.Append(CultureInfo.InvariantCulture, $"""<circle cx="{X(i):F1}" cy="{Y(v):F1}" r="3" fill="{Esc(line.Color)}"><title>{Esc(line.Name)}: {Esc(Num(v))}</title></circle>""").Append('\n');
            }
            sb.Append(CultureInfo.InvariantCulture, $"""<polyline fill="none" stroke="{Esc(line.Color)}" stroke-width="2"{(line.Dashed ? " stroke-dasharray=\"6 4\"" : "")} points="{points.ToString().TrimEnd()}"/>""").Append('\n');
            var ly = Top + 10 + s * 20;
            sb.Append(CultureInfo.InvariantCulture, $"""<line x1="{Left + plotW + 15}" y1="{ly}" x2="{Left + plotW + 40}" y2="{ly}" stroke="{Esc(line.Color)}" stroke-width="2"{(line.Dashed ? " stroke-dasharray=\"6 4\"" : "")}/>""").Append('\n');
            sb.Append(CultureInfo.InvariantCulture, $"""<text x="{Left + plotW + 45}" y="{ly + 4}">{Esc(line.Name)}</text>""").Append('\n');
        }
        sb.Append("</svg>\n");
        return sb.ToString();
    }

    /// <summary>1, 2 or 5 times a power of ten at or above <paramref name="v"/>, so the y ticks are round numbers.</summary>
    internal static double NiceCeiling(double v)
    {
        var magnitude = Math.Pow(10, Math.Floor(Math.Log10(v)));
        foreach (var m in new[] { 1.0, 2.0, 5.0, 10.0 })
            if (m * magnitude >= v * (1 - 1e-12)) return m * magnitude;
        return 10 * magnitude;
    }

    private static string Num(double v) => v.ToString(Math.Abs(v) >= 100 ? "0" : "0.##", CultureInfo.InvariantCulture);

    private static string Esc(string s) => SecurityElement.Escape(s) ?? "";
}
