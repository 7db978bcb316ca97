namespace CnnDsl

open System
open CnnDsl.Graph

/// <summary>
/// The shape of one example, height x width x channels (HWC, the batch axis implied), as the
/// model file writes it; a height or width written <c>?</c> (any size) is null. A vector of n
/// features is 1 x 1 x n with <see cref="P:CnnDsl.TensorShape.IsVector"/> set.
/// </summary>
[<Sealed>]
type TensorShape internal (shape: Shape) =
    let known = function Dim.Known n -> Nullable n | Dim.Dynamic -> Nullable()
    member internal _.Shape = shape
    /// <summary>True for a plain vector of features (after <c>flatten</c> or <c>dense</c>).</summary>
    member _.IsVector = match shape with Vector _ -> true | Image _ -> false
    /// <summary>The height; null when any height is accepted (<c>?</c>); 1 for a vector.</summary>
    member _.Height : Nullable<int> = match shape with Image (h, _, _) -> known h | Vector _ -> Nullable 1
    /// <summary>The width; null when any width is accepted (<c>?</c>); 1 for a vector.</summary>
    member _.Width : Nullable<int> = match shape with Image (_, w, _) -> known w | Vector _ -> Nullable 1
    /// <summary>The channels, or a vector's length.</summary>
    member _.Channels = Cost.channels shape
    /// <summary>True when the height or width is <c>?</c>: the size comes from the data or the image.</summary>
    member _.IsDynamic = (Cost.elements shape).IsNone
    /// <summary>Values per example (height x width x channels); null when the size is dynamic.</summary>
    member _.ElementCount : Nullable<int64> = Option.toNullable (Cost.elements shape)
    /// <summary>Keras's notation with the batch axis: <c>(None, 28, 28, 1)</c>.</summary>
    member _.KerasText = CnnDsl.Dsl.Summary.shapeText shape
    /// <summary>The model file's notation: <c>28x28x1</c>, <c>?x?x3</c>, or <c>120</c> for a vector.</summary>
    override _.ToString() = string shape
    /// <summary>Equal when the shapes are the same.</summary>
    override _.Equals(other: obj | null) = match other with :? TensorShape as t -> t.Shape = shape | _ -> false
    /// <summary>A hash of the shape.</summary>
    override _.GetHashCode() = hash shape
