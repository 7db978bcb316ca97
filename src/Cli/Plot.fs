/// `--plot DIR`: training curves and their CSV files, kept up to date after every epoch.
module CnnDsl.Cli.Plot

open System
open System.IO
open CnnDsl.Graph
open CnnDsl.Dsl
open CnnDsl.Runtime
open CnnDsl.Runtime.Data
open CnnDsl.Runtime.Training

/// `--plot DIR`: after every epoch, DIR/history.csv gains the epoch's line, DIR/progress.csv
/// the running figures reported within it, and DIR/curves.png is redrawn from both (a resumed
/// run keeps what came before its start).
type internal PlotReport(inner: ITrainingReport, folder: string, title: string) =
    let history = Path.Combine(folder, "history.csv")
    let progressFile = Path.Combine(folder, "progress.csv")
    let header = "epoch,seconds,loss,accuracy,val_loss,val_accuracy,images_per_second"
    let text (v: float) = v.ToString("R", Globalization.CultureInfo.InvariantCulture)
    let parse (s: string) = match Double.TryParse(s, Globalization.NumberStyles.Float, Globalization.CultureInfo.InvariantCulture) with | true, v -> Some v | _ -> None
    let optional (s: string) = if s = "" then Some (Nullable()) else parse s |> Option.map Nullable
    let records = Collections.Generic.List<EpochRecord>()
    let progress = Collections.Generic.List<Pictures.Progress>()
    // (an empty or header-only file has no rows; rows that do not parse are skipped by Begin)
    let rows (path: string) = if File.Exists path then (match File.ReadAllLines path with [||] -> [||] | lines -> Array.tail lines) |> Array.map (fun l -> l.Split ',') else [||]
    let save (path: string) (head: string) (lines: string seq) = AtomicFile.WriteAllLines(path, Seq.append [ head ] lines)
    do Directory.CreateDirectory folder |> ignore
    /// A run starting at `firstEpoch` (0 unless resumed) keeps the files' earlier epochs.
    member _.Begin(firstEpoch: int) =
        records.Clear()
        progress.Clear()
        if firstEpoch > 0 then
            for row in rows history do
                match row |> Array.map optional with
                | [| Some e; Some s; Some l; Some a; Some vl; Some va; Some ips |] when e.HasValue && e.Value <= float firstEpoch && s.HasValue && l.HasValue && a.HasValue && ips.HasValue ->
                    records.Add(EpochRecord(int e.Value, 0, s.Value, l.Value, a.Value, vl, va, ips.Value))
                | _ -> ()
            for row in rows progressFile do
                match row |> Array.map parse with
                | [| Some x; Some l; Some a |] when x <= float firstEpoch -> progress.Add { Epoch = x; Loss = l; Accuracy = a }
                | _ -> ()
    member _.Save() =
        let v (x: Nullable<float>) = if x.HasValue then text x.Value else ""
        save history header (records |> Seq.map (fun r -> String.Join(",", string r.Epoch, text r.Seconds, text r.Loss, text r.Accuracy, v r.ValidationLoss, v r.ValidationAccuracy, text r.ImagesPerSecond)))
        save progressFile "epoch,loss,accuracy" (progress |> Seq.map (fun p -> String.Join(",", text p.Epoch, text p.Loss, text p.Accuracy)))
        Pictures.write (Path.Combine(folder, "curves.png")) (Pictures.curves title (List.ofSeq records) (List.ofSeq progress))
    interface ITrainingReport with
        member _.Started(d) = inner.Started d
        member _.Progress(e, b, n, l, a, r) =
            progress.Add { Epoch = float e + float b / float (max 1 n); Loss = l; Accuracy = a }
            inner.Progress(e, b, n, l, a, r)
        member this.EpochDone(r) =
            records.Add r
            this.Save()
            inner.EpochDone r
        member _.Stopped(m) = inner.Stopped m
