using System.IO.MemoryMappedFiles;

namespace LlavaNative.Model.Formats;

/// <summary>
/// A whole file mapped read-only, with a raw pointer to its first byte (the view's <c>PointerOffset</c> already
/// added). Weight files are read through this pointer and never copied; it stays valid until disposal.
/// </summary>
internal sealed unsafe class ReadOnlyFileMapping : IDisposable
{
    private readonly MemoryMappedFile _map;
    private readonly MemoryMappedViewAccessor _view;

    public byte* Pointer { get; private set; }

    public ReadOnlyFileMapping(string path)
    {
        _map = MemoryMappedFile.CreateFromFile(path, FileMode.Open, null, 0, MemoryMappedFileAccess.Read);
        try
        {
            _view = _map.CreateViewAccessor(0, 0, MemoryMappedFileAccess.Read);
            byte* p = null;
            _view.SafeMemoryMappedViewHandle.AcquirePointer(ref p);
            Pointer = p + _view.PointerOffset;
        }
        catch
        {
            _map.Dispose();
            throw;
        }
    }

    public void Dispose()
    {
        if (Pointer != null)
        {
            _view.SafeMemoryMappedViewHandle.ReleasePointer();
            Pointer = null;
        }
        _view.Dispose();
        _map.Dispose();
    }
}
