/// The pictures of `dsl run --plot` and `dsl show`: training curves and the confusion matrix
/// drawn with ScottPlot; filter grids and feature-map sheets composed with SkiaSharp (the
/// library ScottPlot draws with), every map enlarged without smoothing so that a 5x5 kernel
/// stays 25 visible cells. All of them are PNG.
module CnnDsl.Cli.Pictures

open System
open System.IO
open SkiaSharp
open CnnDsl.Runtime.Training

let private font = "DejaVu Sans"

let private encode (surface: SKSurface) =
    use image = surface.Snapshot()
    use data = image.Encode(SKEncodedImageFormat.Png, 100)
    data.ToArray()

/// Writes through a temporary file, so that a reader (or an interrupted run) never sees half a PNG.
let write (path: string) (bytes: byte[]) = AtomicFile.WriteAllBytes(path, bytes)

// ---- training curves ----

/// One point of the running (epoch-so-far) training loss and accuracy, at a fractional epoch.
type Progress = { Epoch: float; Loss: float; Accuracy: float }

/// Loss and accuracy per epoch, training and validation, side by side (1200 x 450); the
/// running training figures within epochs as a thin line, so that even one epoch is a curve.
let curves (title: string) (records: EpochRecord list) (progress: Progress list) : byte[] =
    let width, height = 1200, 450
    let epochs = records |> List.map (fun r -> float r.Epoch) |> List.toArray
    let panel (name: string) (train: EpochRecord -> float) (validation: EpochRecord -> Nullable<float>) (running: Progress -> float) =
        let plot = new ScottPlot.Plot()
        plot.Font.Set(font) |> ignore
        if not progress.IsEmpty then
            let r = plot.Add.Scatter(progress |> List.map (fun p -> p.Epoch) |> List.toArray, progress |> List.map running |> List.toArray)
            r.LegendText <- "training (running, within the epoch)"
            r.LineWidth <- 1.0f
            r.MarkerSize <- 0.0f
        let t = plot.Add.Scatter(epochs, records |> List.map train |> List.toArray)
        t.LegendText <- "training (epoch)"
        t.LineWidth <- 2.0f
        t.MarkerSize <- 7.0f
        let held = records |> List.filter (fun r -> (validation r).HasValue)
        if not held.IsEmpty then
            let v = plot.Add.Scatter(held |> List.map (fun r -> float r.Epoch) |> List.toArray,
                                     held |> List.map (fun r -> (validation r).Value) |> List.toArray)
            v.LegendText <- "validation"
            v.LineWidth <- 2.0f
        plot.Title(sprintf "%s: %s" title name)
        plot.XLabel "epoch"
        plot.YLabel name
        // loss falls and accuracy rises: keep the legend off the lines' ends
        plot.ShowLegend(if name = "loss" then ScottPlot.Alignment.UpperRight else ScottPlot.Alignment.LowerRight) |> ignore
        // whole epochs only on the x axis
        if progress.IsEmpty then
            plot.Axes.Bottom.TickGenerator <- ScottPlot.TickGenerators.NumericAutomatic(IntegerTicksOnly = true)
            if epochs.Length = 1 then plot.Axes.SetLimitsX(0.5, 1.5)
        plot
    use loss = panel "loss" (fun r -> r.Loss) (fun r -> r.ValidationLoss) (fun p -> p.Loss)
    use accuracy = panel "accuracy" (fun r -> r.Accuracy) (fun r -> r.ValidationAccuracy) (fun p -> p.Accuracy)
    // Each panel is drawn on its own (a plot clears the whole canvas it is given), then placed.
    use surface = SKSurface.Create(SKImageInfo(width, height))
    surface.Canvas.Clear SKColors.White
    for i, plot in [ 0, loss; 1, accuracy ] do
        use bitmap = SKBitmap.Decode(plot.GetImageBytes(width / 2, height, ScottPlot.ImageFormat.Png))
        surface.Canvas.DrawBitmap(bitmap, float32 (i * width / 2), 0.0f)
    encode surface

// ---- confusion matrix ----

/// The test set's confusion matrix as a heat map: rows the true class, columns the predicted
/// one, each cell's count written in it.
let confusion (title: string) (matrix: int[,]) (names: string[]) : byte[] =
    let n = Array2D.length1 matrix
    // an extra column holds predictions outside the data's classes
    let names, columns = (if Array2D.length2 matrix > n then Array.append names [| "other" |] else names), Array2D.length2 matrix
    use plot = new ScottPlot.Plot()
    plot.Font.Set(font) |> ignore
    // Row r of the data is drawn at y = n - 1 - r, so the first class is at the top, as printed.
    let data = Array2D.init n columns (fun r c -> float matrix[r, c])
    let heat = plot.Add.Heatmap(data)
    heat.Colormap <- ScottPlot.Colormaps.Viridis()
    heat.CellAlignment <- ScottPlot.Alignment.MiddleCenter
    let top = data |> Seq.cast<float> |> Seq.fold max 0.0
    for r in 0 .. n - 1 do
        for c in 0 .. columns - 1 do
            let label = plot.Add.Text(string matrix[r, c], float c, float (n - 1 - r))
            label.LabelAlignment <- ScottPlot.Alignment.MiddleCenter
            label.LabelFontSize <- 11.0f
            label.LabelFontColor <- if data[r, c] > top * 0.6 then ScottPlot.Colors.Black else ScottPlot.Colors.White
    plot.Axes.Bottom.SetTicks(Array.init columns float, names)
    plot.Axes.Bottom.TickLabelStyle.Rotation <- -45.0f
    plot.Axes.Bottom.TickLabelStyle.Alignment <- ScottPlot.Alignment.MiddleRight
    plot.Axes.Bottom.MinimumSize <- 110.0f
    plot.Axes.Left.SetTicks(Array.init n (fun r -> float (n - 1 - r)), Array.truncate n names)
    plot.Axes.SetLimits(-0.5, float columns - 0.5, -0.5, float n - 0.5)
    plot.Title(title)
    plot.XLabel "predicted class"
    plot.YLabel "true class"
    plot.Add.ColorBar(heat) |> ignore
    plot.GetImageBytes(200 + 60 * columns, 160 + 55 * n, ScottPlot.ImageFormat.Png)

// ---- grids of small maps ----

/// One small picture: its size and its pixels as grey levels (1 value per cell) or colour
/// (3 values per cell, red-green-blue), each in [0, 1].
type Cell = { Height: int; Width: int; Colour: bool; Values: float[] }

/// Scales values to [0, 1] by their own range (a constant map comes out mid-grey).
let normalise (values: float[]) =
    let lo = Array.min values
    let hi = Array.max values
    if hi > lo then values |> Array.map (fun v -> (v - lo) / (hi - lo)) else Array.create values.Length 0.5

/// A sheet of labelled blocks, each a grid of cells: a caption line, then the cells at
/// `scale` screen pixels per cell, `columns` per row.
let sheet (title: string) (blocks: (string * Cell list * int * int) list) : byte[] =
    let margin, gap, captionH, titleH = 12, 3, 22, 30
    use typeface = SKTypeface.FromFamilyName(font)
    use titleFont = new SKFont(typeface, 17.0f)
    use captionFont = new SKFont(typeface, 13.0f)
    let blockSize (_, cells: Cell list, scale, columns) =
        let cellW = cells |> List.map (fun c -> c.Width * scale) |> List.fold max 1
        let cellH = cells |> List.map (fun c -> c.Height * scale) |> List.fold max 1
        let cols = min columns (max 1 cells.Length)
        let rows = (cells.Length + cols - 1) / cols
        cellW, cellH, cols, rows, cols * (cellW + gap) - gap, captionH + rows * (cellH + gap) - gap
    let sizes = blocks |> List.map blockSize
    let textW = blocks |> List.map (fun (caption, _, _, _) -> int (captionFont.MeasureText caption)) |> List.fold max (int (titleFont.MeasureText title))
    let width = 2 * margin + max textW (sizes |> List.map (fun (_, _, _, _, w, _) -> w) |> List.fold max 0)
    let height = titleH + margin + (sizes |> List.sumBy (fun (_, _, _, _, _, h) -> h + margin))
    use surface = SKSurface.Create(SKImageInfo(width, height))
    let canvas = surface.Canvas
    canvas.Clear(SKColors.White)
    use ink = new SKPaint(Color = SKColors.Black, IsAntialias = true)
    use fill = new SKPaint(IsAntialias = false)
    canvas.DrawText(title, float32 margin, 22.0f, SKTextAlign.Left, titleFont, ink)
    let mutable y = titleH + margin
    for (caption, cells, scale, _), (cellW, cellH, cols, _, _, blockH) in List.zip blocks sizes do
        canvas.DrawText(caption, float32 margin, float32 (y + 15), SKTextAlign.Left, captionFont, ink)
        cells |> List.iteri (fun i cell ->
            let x0 = margin + (i % cols) * (cellW + gap)
            let y0 = y + captionH + (i / cols) * (cellH + gap)
            for cy in 0 .. cell.Height - 1 do
                for cx in 0 .. cell.Width - 1 do
                    let level k = byte (Math.Round(255.0 * Math.Clamp(cell.Values[k], 0.0, 1.0)))
                    fill.Color <-
                        if cell.Colour then
                            let k = (cy * cell.Width + cx) * 3
                            SKColor(level k, level (k + 1), level (k + 2))
                        else let g = level (cy * cell.Width + cx) in SKColor(g, g, g)
                    canvas.DrawRect(SKRect.Create(float32 (x0 + cx * scale), float32 (y0 + cy * scale), float32 scale, float32 scale), fill))
        y <- y + blockH + margin
    encode surface

/// Screen pixels per map cell: small maps are enlarged to about `target` pixels.
let scaleFor (target: int) (size: int) = max 1 (target / max 1 size)
