using System.Buffers;

namespace Gateway.Proxy.Upstream;

/// <summary>
/// De-chunks a <c>Transfer-Encoding: chunked</c> body in place: the caller receives raw bytes straight into its own buffer and this
/// moves the data bytes left over the framing, so a chunked body costs no second buffer and no copy beyond a memmove. A byte-at-a-time
/// state machine for the framing (so any split between reads works), a bulk copy for the data. Chunk extensions and trailers are
/// read and ignored; a chunk-size line or trailer section longer than <see cref="MaxLineBytes"/> is refused (a bound on what a
/// broken upstream can make us scan without producing data).
/// </summary>
internal struct ChunkedDecoder
{
    public const int MaxLineBytes = 8 * 1024;

    private enum State : byte { Size, Extension, SizeLf, Data, DataCr, DataLf, TrailerLineStart, TrailerLine, FinalLf, Done }

    private State _state;
    private bool _sawDigit;
    private int _lineBytes;
    private long _remaining;

    public readonly bool IsDone => _state == State.Done;

    public void Reset() => this = default;

    /// <summary>
    /// Decodes <paramref name="buffer"/> in place: afterwards <c>buffer[..produced]</c> holds the body bytes it carried.
    /// <see cref="OperationStatus.Done"/> when the terminating chunk and trailers ended, with <paramref name="consumed"/> the bytes
    /// that belonged to the body (anything after is not ours); <see cref="OperationStatus.NeedMoreData"/> after consuming all of it;
    /// <see cref="OperationStatus.InvalidData"/> on bad framing.
    /// </summary>
    public OperationStatus Decode(Span<byte> buffer, out int produced, out int consumed)
    {
        int r = 0, w = 0;
        while (r < buffer.Length)
        {
            if (_state == State.Data)
            {
                int n = (int)Math.Min(_remaining, buffer.Length - r);
                if (w != r) buffer.Slice(r, n).CopyTo(buffer[w..]); // overlapping moves are memmove-safe
                r += n;
                w += n;
                _remaining -= n;
                if (_remaining == 0) _state = State.DataCr;
                continue;
            }
            byte b = buffer[r++];
            if (++_lineBytes > MaxLineBytes) return Invalid(w, r, out produced, out consumed);
            switch (_state)
            {
                case State.Size:
                    int digit = HexValue(b);
                    if (digit >= 0)
                    {
                        if (_remaining > (long.MaxValue >> 4)) return Invalid(w, r, out produced, out consumed);
                        _remaining = (_remaining << 4) | (uint)digit;
                        _sawDigit = true;
                    }
                    else if (!_sawDigit) return Invalid(w, r, out produced, out consumed);
                    else if (b is (byte)';' or (byte)' ' or (byte)'\t') _state = State.Extension;
                    else if (b == '\r') _state = State.SizeLf;
                    else if (b == '\n') EndSizeLine();
                    else return Invalid(w, r, out produced, out consumed);
                    break;
                case State.Extension: // chunk-ext (or whitespace before CRLF): skipped
                    if (b == '\r') _state = State.SizeLf;
                    else if (b == '\n') EndSizeLine();
                    break;
                case State.SizeLf:
                    if (b != '\n') return Invalid(w, r, out produced, out consumed);
                    EndSizeLine();
                    break;
                case State.DataCr:
                    if (b == '\r') _state = State.DataLf;
                    else if (b == '\n') StartSizeLine();
                    else return Invalid(w, r, out produced, out consumed);
                    break;
                case State.DataLf:
                    if (b != '\n') return Invalid(w, r, out produced, out consumed);
                    StartSizeLine();
                    break;
                case State.TrailerLineStart:
                    if (b == '\r') _state = State.FinalLf;
                    else if (b == '\n') { _state = State.Done; produced = w; consumed = r; return OperationStatus.Done; }
                    else _state = State.TrailerLine;
                    break;
                case State.TrailerLine: // a trailer field: ignored
                    if (b == '\n') _state = State.TrailerLineStart;
                    break;
                case State.FinalLf:
                    if (b != '\n') return Invalid(w, r, out produced, out consumed);
                    _state = State.Done;
                    produced = w;
                    consumed = r;
                    return OperationStatus.Done;
                case State.Done:
                    produced = w;
                    consumed = r - 1;
                    return OperationStatus.Done;
            }
        }
        produced = w;
        consumed = r;
        return _state == State.Done ? OperationStatus.Done : OperationStatus.NeedMoreData;
    }

    private void EndSizeLine()
    {
        // The last chunk (size 0) is followed by trailers and the empty line; the trailer section shares one line budget.
        _state = _remaining == 0 ? State.TrailerLineStart : State.Data;
        if (_state == State.Data) _lineBytes = 0;
    }

    private void StartSizeLine()
    {
        _state = State.Size;
        _sawDigit = false;
        _lineBytes = 0;
        _remaining = 0;
    }

    private static int HexValue(byte b) => b switch
    {
        >= (byte)'0' and <= (byte)'9' => b - '0',
        >= (byte)'a' and <= (byte)'f' => b - 'a' + 10,
        >= (byte)'A' and <= (byte)'F' => b - 'A' + 10,
        _ => -1,
    };

    private static OperationStatus Invalid(int w, int r, out int produced, out int consumed)
    {
        produced = w;
        consumed = r;
        return OperationStatus.InvalidData;
    }
}
