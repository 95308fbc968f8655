using System.Buffers.Text;
using System.Text;

namespace Gateway.Limits.Resp;

/// <summary>
/// Writes commands as RESP arrays of bulk strings into one growable buffer, reused command after command (not thread-safe: its
/// owner writes under its own lock).
/// </summary>
internal sealed class RespEncoder
{
    private byte[] _buffer = new byte[512];
    private int _length;

    public ReadOnlySpan<byte> Written => _buffer.AsSpan(0, _length);

    public void Clear() => _length = 0;

    /// <summary>Starts a command of <paramref name="count"/> arguments (the command's name is the first).</summary>
    public RespEncoder Command(int count)
    {
        Clear();
        Header((byte)'*', count);
        return this;
    }

    public RespEncoder Arg(ReadOnlySpan<byte> value)
    {
        Header((byte)'$', value.Length);
        Ensure(value.Length + 2);
        value.CopyTo(_buffer.AsSpan(_length));
        _length += value.Length;
        CrLf();
        return this;
    }

    public RespEncoder Arg(string value)
    {
        int bytes = Encoding.UTF8.GetByteCount(value);
        Header((byte)'$', bytes);
        Ensure(bytes + 2);
        _length += Encoding.UTF8.GetBytes(value, _buffer.AsSpan(_length));
        CrLf();
        return this;
    }

    public RespEncoder Arg(long value)
    {
        Span<byte> digits = stackalloc byte[20];
        Utf8Formatter.TryFormat(value, digits, out int n);
        return Arg(digits[..n]);
    }

    private void Header(byte type, long value)
    {
        Ensure(24);
        _buffer[_length++] = type;
        Utf8Formatter.TryFormat(value, _buffer.AsSpan(_length), out int n);
        _length += n;
        CrLf();
    }

    private void CrLf()
    {
        Ensure(2);
        _buffer[_length++] = (byte)'\r';
        _buffer[_length++] = (byte)'\n';
    }

    private void Ensure(int more)
    {
        if (_length + more > _buffer.Length) Array.Resize(ref _buffer, Math.Max(_buffer.Length * 2, _length + more));
    }
}
