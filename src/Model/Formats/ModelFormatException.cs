namespace LlavaNative.Model.Formats;

/// <summary>Base of every "this model file is unusable" error; messages name the file and the problem.</summary>
public class ModelFormatException(string message, Exception? inner = null) : Exception(message, inner);
