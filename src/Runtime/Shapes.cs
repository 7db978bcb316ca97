using CnnDsl.Graph;

namespace CnnDsl.Runtime;

/// <summary>Sizes of graph shapes, once every size is known (the runtime runs fixed sizes).</summary>
public static class Shapes
{
    public static (int H, int W, int C) Hwc(Shape shape) => shape switch
    {
        Shape.Image { height: Dim.Known h, width: Dim.Known w } image => (h.size, w.size, image.channels),
        Shape.Vector v => (1, 1, v.length),
        _ => throw new ArgumentException($"the runtime needs fixed sizes, but a shape is {shape}; give the input's size"),
    };

    public static int Elements(Shape shape)
    {
        var (h, w, c) = Hwc(shape);
        return h * w * c;
    }

    /// <summary>Channels (or a vector's length): known even when the spatial size is dynamic.</summary>
    public static int Channels(Shape shape) => shape switch
    {
        Shape.Image image => image.channels,
        Shape.Vector v => v.length,
        _ => throw new ArgumentException($"unknown shape {shape}"),
    };
}
