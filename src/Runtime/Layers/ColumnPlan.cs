using CnnDsl.Graph;

namespace CnnDsl.Runtime.Layers;

/// <summary>
/// How a convolution is lowered, and where it keeps its buffer. In order: a direct kernel
/// (DirectConv: small windows, few filters), Winograd F(4x4, 3x3), F(5x5, 3x3), F(7x7, 3x3), F(2x2, 3x3) or F(2x2, 7x7) (WinogradConv), a shifted GEMM
/// (ShiftedGemm), each where it measured faster and its buffer fits <see cref="PrivateLimit"/>;
/// otherwise im2col + GEMM. A small column matrix (the whole batch's
/// rows within <see cref="PrivateLimit"/> values) is the layer's own: one GEMM per pass, and
/// backward reuses forward's columns. A large one (VGG16's early layers at 224x224 take
/// hundreds of MB per image) runs in chunks of whole images through one buffer that every such
/// layer of the network shares, and backward rebuilds each chunk's columns: memory then grows
/// with the largest chunk, not with the sum of every layer's full-batch columns.
/// </summary>
public readonly record struct ColumnPlan(bool Shared, int ImagesPerChunk, long Elements, bool Shifted = false, bool Direct = false, int WinogradTile = 0, int WinogradKernel = 0,
    int FftHeight = 0, int FftWidth = 0)
{
    /// <summary>Whether the convolution runs as FftConv, on an FftHeight x FftWidth grid.</summary>
    public bool Fft => FftHeight > 0;

    /// <summary>Stride-1 convolutions with windows of at least FftMinWindow values (kh kw), C x F
    /// at least FftMinProduct, a transform grid within FftConv.MaxGrid, and at least FftMinSaving
    /// times fewer multiplications than the direct form run as FftConv; CNNDSL_FFT=0 turns the
    /// path off. (Tests lower the thresholds, which are there for speed.) Measured (session 9,
    /// `cnndsl-bench conv`, forward + backward, 2 threads, against the lowering each had): the seed
    /// Fashion-MNIST model's 32 -> 64 7x7 layer on 22x22 maps (10x fewer multiplications on a 24x24
    /// grid) 38-44 -> 19-20 ms at batch 32 and 162-179 -> 53-56 ms at 128 (im2col); its 64 -> 128 one
    /// on 16x16 (8.5x fewer) 36-38 -> 20 and 121-150 -> 47-50 ms (F(2x2, 7x7)); its 128 -> 256 one on
    /// 10x10 maps (3.3x fewer on a 10x10 grid; a 16x16 grid would save only 1.4x) see
    /// FftMinAmortisation.</summary>
    public static bool UseFft { get; set; } = Environment.GetEnvironmentVariable("CNNDSL_FFT") != "0";

    public static int FftMinWindow { get; set; } = 25;

    public static long FftMinProduct { get; set; } = 2048;

    public static double FftMinSaving { get; set; } = 3.0;

    /// <summary>The weights' transforms (2 C F planes a step, forward and gradient, whatever the batch)
    /// must be paid for by the images': FFT only where Saving x B (C + F) is at least this times C F.
    /// Measured (session 9, forward + backward, 2 threads): the seed model's 128 -> 256 layer on
    /// 10x10 maps (3.3x fewer multiplications on a 10x10 grid) lost to im2col at batch 32 (43-66
    /// against 37-41 ms, a throwaway script's figures; 3.3 x 32 x 384 = 40k against 2 x 32,768) and
    /// won at batch 128 (`cnndsl-bench conv`: 75-76 against 104-108 ms); its 64 -> 128 layer (8.5x)
    /// won at both (8.5 x 32 x 192 = 52k against 16k).</summary>
    public static double FftMinAmortisation { get; set; } = 2.0;

    /// <summary>FFT grids of powers of two only (radix-2 transforms throughout) instead of the
    /// smallest length with prime factors 2, 3 and 5; CNNDSL_FFT_GRID=pow2 (benchmarks, tests).</summary>
    public static bool FftPowerOfTwoGrids { get; set; } = Environment.GetEnvironmentVariable("CNNDSL_FFT_GRID") == "pow2";

    /// <summary>Values of spectra (V and M) an FFT convolution keeps at a time, the batch run in
    /// chunks of images that fit; 0 (the default) keeps the whole batch's; CNNDSL_FFT_CHUNK
    /// overrides (tests, benchmarks).</summary>
    public static long FftChunkElements { get; set; } =
        long.TryParse(Environment.GetEnvironmentVariable("CNNDSL_FFT_CHUNK"), out var e) && e >= 1 ? e : 0;

    /// <summary>Whether the convolution runs as WinogradConv: F(m x m, r x r) with m = WinogradTile
    /// and r = WinogradKernel.</summary>
    public bool Winograd => WinogradTile > 0;

    /// <summary>Tests: take the shifted path for every stride-1 shape, worth it or not.</summary>
    public static bool ShiftedEverywhere { get; set; }

    /// <summary>Stride-1 convolutions on at least this many input channels run as shifted GEMMs
    /// (ShiftedGemm: no column matrix) when their buffers fit the private limit.</summary>
    public static int ShiftedMinChannels { get; set; } =
        int.TryParse(Environment.GetEnvironmentVariable("CNNDSL_SHIFTED_MIN_CHANNELS"), out var c) && c >= 1 ? c : 16;

    /// <summary>Convolutions with at most this many values per window (KH KW C) and at most
    /// DirectMaxFilters filters run as DirectConv; CNNDSL_DIRECT_MAX_K and CNNDSL_DIRECT_MAX_F
    /// override them (0 turns the path off). Measured (bench/Program.cs `train --layers`, forward +
    /// backward, against im2col + MKL on 2 threads): LeNet's first layer (K 25, 6 filters)
    /// 1.38 -> 0.70 ms at batch 32, 5.1 -> 2.7 ms at 128; with 32 filters, once the weight gradient
    /// took four vectors of filters at a time, the strided model's first layer (K 9) 6.7 -> 4.1 ms
    /// at batch 128, cifar10-bn's (K 27) 6.9 -> 6.3, the Fashion-MNIST model's (K 49) 7.2 -> 6.1
    /// (and level or better at batch 32). Larger windows (LeNet's second layer, K 150) were 2.6x
    /// slower while the input gradient was a scalar loop (see DirectMaxProduct).</summary>
    public static int DirectMaxWindowValues { get; set; } =
        int.TryParse(Environment.GetEnvironmentVariable("CNNDSL_DIRECT_MAX_K"), out var k) && k >= 0 ? k : 160;

    /// <summary>And at most this many window values times filters (K F). Session 14, with kernels for
    /// two groups of filters and a vectorised input gradient (`cnndsl-bench conv --batch 128`, 2
    /// threads, forward + backward): LeNet's second layer (6 -> 16 5x5 on 14x14, K 150) level with
    /// im2col alone (2.1-2.8 against 1.9-3.1 ms, noisy) but the whole LeNet step at batch 128 3.76-3.89
    /// against 4.29-4.84 ms (`train`, alternated: no MKL threads to wake); 16 -> 16 3x3 (K 144) on
    /// 16x16 4.6 against im2col's 5.5 ms, on 32x32 16.4 against the shifted GEMM's 24.6; but 16 -> 32
    /// (K F 4,608) 11.8 against Winograd's 7.1. Every K F up to 75 x 32 (the earlier rule) stays.</summary>
    public static int DirectMaxProduct { get; set; } = 2400;

    public static int DirectMaxFilters { get; set; } =
        int.TryParse(Environment.GetEnvironmentVariable("CNNDSL_DIRECT_MAX_F"), out var f) && f >= 0 ? f : 32;

    /// <summary>3x3 (and some 7x7: WinogradTiles) stride-1 convolutions on whole vectors of channels
    /// and filters, with C x F at least WinogradMinProduct, run as WinogradConv; CNNDSL_WINOGRAD=0
    /// turns it off. Session 3's measurement, of F(2x2, 3x3), the only tile then:
    /// Measured (bench/Program.cs `train --layers`, CNNDSL_WINOGRAD=0 against 1, 2 threads):
    /// cifar10-bn's 32->64, 64->64 and 64->128 convolutions on 16x16 and 8x8 maps 10-20% faster
    /// at batch 128 (the whole step 546 -> 710 images/s), the strided model's 64->128 one too
    /// (step 1,491 -> 1,637); its 32->32 convolution on 32x32 maps was slower than the shifted
    /// GEMM (23.7 against 18.5 ms forward at batch 128): with K = 32 the 16 products are too thin
    /// to pay for the transforms.
    /// Session 9, with F(4x4, 3x3) and its transforms on the layer threads (`cnndsl-bench conv
    /// --batch 128`, forward + backward, 2 threads, against CNNDSL_WINOGRAD=0): 32 -> 32 on 32x32
    /// maps (cifar10-bn's second layer) 59-65 ms against the shifted GEMM's 66-70 (the whole
    /// cifar10-bn step 762-777 -> 869-899 images/s); 16 -> 32 on 32x32 34-38 against 39-44; 32 -> 32
    /// on 16x16 10-16 against im2col's 19-20; but 16 -> 16 on 32x32 lost to the shifted GEMM in a
    /// first measurement (48 against 27 ms). Hence the minimum C x F of 512 (it was 2048).</summary>
    public static bool UseWinograd { get; set; } = Environment.GetEnvironmentVariable("CNNDSL_WINOGRAD") != "0";

    public static int WinogradMinProduct { get; set; } = 512;

    /// <summary>Values of transformed input and products (V and M) a Winograd convolution keeps at a
    /// time, the batch run in chunks of images that fit; 0 (the default) chooses by the rule in
    /// WinogradChunk; CNNDSL_WINOGRAD_CHUNK overrides (tests, benchmarks).</summary>
    public static long WinogradChunkElements { get; set; } =
        long.TryParse(Environment.GetEnvironmentVariable("CNNDSL_WINOGRAD_CHUNK"), out var e) && e >= 1 ? e : 0;

    /// <summary>Whether a Winograd forward pass on several layer threads runs each thread's images
    /// through all three steps (input transform, products, output transform) a few images at a
    /// time, the products on that thread alone, instead of each step over the whole chunk with
    /// MKL's threads on the products: a few images' V and M are still in cache for the next step.
    /// CNNDSL_WINOGRAD_FUSED=0 turns it off (benchmarks). Measured (`cnndsl-bench conv --first`, 2
    /// threads, off against on, forward): 64 -> 128 on 12x12 maps (the strided model's third layer)
    /// at batch 256 19-24 -> 15-16 ms (with WinogradConv.Spaced in both); 256 -> 256 on 8x8 maps at
    /// batch 256 43-48 -> 39-51; 64 -> 64 on 16x16 at batch 128 11-14 -> 9-11. Backward's input
    /// gradient done the same way (dV products and their adjoint transform per thread) was slower:
    /// the strided model's 64 -> 128 layer 17 -> 21-22 ms at batch 128 (`train --layers`).</summary>
    public static bool WinogradFused { get; set; } = Environment.GetEnvironmentVariable("CNNDSL_WINOGRAD_FUSED") != "0";

    /// <summary>Values of V and M that one fused step keeps (1 MB of float, a core's L2 here: steps of
    /// one or two images measured slower, their products too small); CNNDSL_WINOGRAD_FUSED_ELEMENTS
    /// overrides (tests: 1, a step per image).</summary>
    public static long WinogradFusedElements { get; set; } =
        long.TryParse(Environment.GetEnvironmentVariable("CNNDSL_WINOGRAD_FUSED_ELEMENTS"), out var e) && e >= 1 ? e : 256L << 10;

    /// <summary>The Winograd tile (m of F(m x m, r x r)) to use: 0 chooses by the rule in
    /// WinogradTiles, 2, 4, 5 or 7 forces that tile where the window has it (CNNDSL_WINOGRAD_TILE; tests
    /// and benchmarks).</summary>
    public static int WinogradTileChoice { get; set; } =
        int.TryParse(Environment.GetEnvironmentVariable("CNNDSL_WINOGRAD_TILE"), out var t) && t is 2 or 4 or 5 or 7 ? t : 0;

    /// <summary>The tiles worth trying for a layer, best first (the first whose buffer fits is
    /// taken). Measured (bench/Program.cs `train --layers`, idle machine, 2 threads, forward +
    /// backward): 3x3: F(4x4) over F(2x2) on models/cifar10-best.cnn at batch 256, 352 -> 473
    /// images/s per step (its 256 -> 256 convolutions on 8x8 maps 122 -> 83 ms; 32 -> 64 on 32x32
    /// level), and on models/fashion-mnist-best.cnn at batch 128, 944 -> 1,081 (64 -> 64 on 14x14
    /// 32 -> 29 ms, 128 -> 128 on 7x7 24 -> 16 ms). 7x7 F(2x2): on the seed's Fashion-MNIST model
    /// at batch 128 only its 64 -> 128 convolution on 16x16 -> 10x10 maps won (101 -> 71 ms, in
    /// chunks of 2M values); its 32 -> 64 one lost (86 -> 106 ms: the 64 products are on only 32
    /// channels) and so did its 128 -> 256 one with 4x4 outputs (51 -> 55 ms).</summary>
    private static int[] WinogradTiles(Window window, int outHeight, int outWidth, int channels)
    {
        var tiles = WinogradConv<float>.TileSizes(window);
        if (WinogradTileChoice != 0) return tiles.Contains(WinogradTileChoice) ? [WinogradTileChoice] : tiles;
        if (window.KernelH == 7) return channels >= 64 && outHeight >= 8 && outWidth >= 8 ? tiles : [];
        // the larger tile with the fewest products, where it has at least 20% fewer than F(4x4)
        long four = Products(4, outHeight, outWidth), five = Products(5, outHeight, outWidth), seven = Products(7, outHeight, outWidth);
        if (seven <= five && seven <= 0.8 * four) return [7, 4, 2];
        if (five <= 0.8 * four) return [5, 4, 2];
        return [4, 2];
    }

    /// <summary>Products per channel pair of F(m x m, 3x3) over an output map: tiles times (m + 2)^2.
    /// F(7x7) has 1.78x fewer than F(4x4) where 7 divides the sides (28, 14, 7: the MNIST-sized
    /// maps), F(5x5) 1.65x fewer on 10x10 maps, but their larger transforms cost more, so they are
    /// taken only for 20% fewer: measured
    /// (`cnndsl-bench conv --batch 128`, 2 threads), 64 -> 64 on 14x14 27-31 -> 18 ms and 128 -> 128
    /// on 7x7 19-22 -> 14 ms forward + backward with F(7x7), 64 -> 128 on 10x10 34-36 -> 27 ms with
    /// F(5x5); F(7x7) on 32x32 maps (12% fewer) was not measured.</summary>
    private static long Products(int m, int outHeight, int outWidth) =>
        (long)((outHeight + m - 1) / m) * ((outWidth + m - 1) / m) * (m + 2) * (m + 2);

    /// <summary>Images per chunk of a Winograd convolution: the whole batch for 3x3 windows (their
    /// tiles' V and M are read back soon enough; chunks measured slower on the 256-channel layers,
    /// 473 -> 338 images/s for cifar10-best), 2M values (8 MB) for 7x7's 8x8 tiles (the whole
    /// batch's 64 planes were slower: the seed model's 64 -> 128 convolution 115 -> 71 ms).</summary>
    private static int WinogradChunk(WinogradConv<float> winograd, Window window, int batch)
    {
        long budget = WinogradChunkElements != 0 ? WinogradChunkElements : window.KernelH == 7 ? 2L << 20 : long.MaxValue;
        return (int)Math.Clamp(budget / winograd.ChunkElements(1), 1, batch);
    }

    /// <summary>Whether an im2col convolution with its own columns, on several layer threads, runs
    /// forward image by image on each thread (im2col, then the product on that thread alone, then
    /// bias and ReLU, a CacheElements group of images at a time) instead of im2col over the threads
    /// and then one product on MKL's threads; CNNDSL_COLUMNS_FUSED=0 turns it off (benchmarks).
    /// Measured (`cnndsl-bench conv --first`, batch 256, 2 threads, forward, ReLU): the strided
    /// model's stride-2 layers 32 -> 64 on 26x26 maps 12.5-14.5 -> 9.7-10.9 ms and 128 -> 256 on
    /// 10x10 13.8-14.3 -> 12.8-13.1. Backward's input gradient done the same way (the columns'
    /// gradient and col2im per thread) was no faster (`train --layers`, batch 128).</summary>
    public static bool ColumnsFused { get; set; } = Environment.GetEnvironmentVariable("CNNDSL_COLUMNS_FUSED") != "0";

    /// <summary>See ColumnsFused: the fewest rows of a fused group (the seed Fashion-MNIST model's
    /// last layer, 16 rows an image and 6,272 columns, has groups of 2 images: it stays unfused).</summary>
    public static int ColumnsFusedMinimumRows { get; set; } = 128;

    /// <summary>Values a layer may keep for its own columns (256 MB of float): the seed's
    /// Fashion-MNIST model at batch 128 keeps its own (rebuilding them in backward cost 20%).</summary>
    public static long PrivateLimit { get; set; } = 64L << 20;

    /// <summary>Values of columns written and multiplied at a time in forward (1 MB of float:
    /// about what a core's L2 holds).</summary>
    public static long CacheElements { get; set; } = 256L << 10;

    /// <summary>Rows of the smallest forward product (a chunk of several images at least).</summary>
    public static int MinimumRows { get; set; } = 8192;

    /// <summary>Values in one chunk of the shared buffer (16 MB of float; at least one image).</summary>
    public static long ChunkElements { get; set; } = 4L << 20;

    /// <summary>The plan for a convolution node at a batch size; Elements is the size of its
    /// column buffer (also used for their gradient), 0 for a 1x1 stride-1 convolution.</summary>
    public static ColumnPlan For(Node node, int batch)
    {
        var window = node.Kind switch
        {
            LayerKind.Conv conv => conv.Item.Window,
            LayerKind.FixedConv fixedConv => fixedConv.Item.Window,
            _ => throw new ArgumentException($"{node.Name} is not a convolution"),
        };
        // Grouped and depthwise convolutions run directly (GroupedConv2d): no columns.
        if (IsIdentity(window) || node.Kind is LayerKind.Conv { Item.Groups: > 1 }) return new ColumnPlan(false, batch, 0);
        var (h, w, c) = Shapes.Hwc(node.InputShapes.Head);
        var (oh, ow, f) = Shapes.Hwc(node.OutputShape);
        int windowValues = window.KernelH * window.KernelW * c;
        if (windowValues <= DirectMaxWindowValues && f <= DirectMaxFilters && (long)windowValues * f <= DirectMaxProduct && !ShiftedEverywhere)
        {
            long elements = new DirectConv<float>(h, w, c, f, oh, ow, window).Elements(batch);
            if (elements <= PrivateLimit) return new ColumnPlan(false, batch, elements, Direct: true);
        }
        if (UseFft && window.KernelH * window.KernelW >= FftMinWindow && (long)c * f >= FftMinProduct && FftConv<float>.Applies(window, h, w, c, f))
        {
            var fft = new FftConv<float>(h, w, c, f, oh, ow, window);
            int chunk = (int)Math.Clamp(FftChunkElements != 0 ? FftChunkElements / fft.ChunkElements(1) : batch, 1, batch);
            long elements = fft.Elements(batch, chunk);
            if (fft.Saving >= FftMinSaving && fft.Saving * batch * (c + f) >= FftMinAmortisation * c * f && elements <= PrivateLimit)
                return new ColumnPlan(false, chunk, elements, FftHeight: fft.GridHeight, FftWidth: fft.GridWidth);
        }
        if (UseWinograd && WinogradConv<float>.Applies(window, c, f) && (long)c * f >= WinogradMinProduct && !ShiftedEverywhere)
        {
            foreach (int tile in WinogradTiles(window, oh, ow, c))
            {
                var winograd = new WinogradConv<float>(h, w, c, f, oh, ow, window, tile);
                int chunk = WinogradChunk(winograd, window, batch);
                long elements = winograd.Elements(batch, chunk);
                if (elements <= PrivateLimit) return new ColumnPlan(false, chunk, elements, WinogradTile: tile, WinogradKernel: window.KernelH);
            }
        }
        // Measured (bench/Program.cs `train`, CNNDSL_SHIFTED_MIN_CHANNELS=100000 turns it off):
        // cifar10-bn's same 3x3 convs on 32-128 channels 3-6% faster; the Fashion-MNIST model's
        // 7x7 convs 2.7x slower (49 thin products) and the strided model's 12x12 -> 10x10 conv
        // 12% slower (44% of the padded grid's rows dropped). Hence: at most 3x3, and a padded
        // grid at most a fifth larger than the output.
        bool worth = window.KernelH * window.KernelW <= 9 &&
            5L * (h + window.Padding.Top + window.Padding.Bottom) * (w + window.Padding.Left + window.Padding.Right) <= 6L * oh * ow;
        if (ShiftedGemm.Applies(window) && c >= ShiftedMinChannels && (worth || ShiftedEverywhere))
        {
            var (padded, extended) = new ShiftedGemm(h, w, c, f, window).Sizes(batch);
            if (padded + extended <= PrivateLimit) return new ColumnPlan(false, batch, padded + extended, true);
        }
        long perImage = (long)oh * ow * window.KernelH * window.KernelW * c;
        if (perImage * batch <= PrivateLimit) return new ColumnPlan(false, batch, perImage * batch);
        int images = (int)Math.Clamp(ChunkElements / perImage, 1, batch);
        return new ColumnPlan(true, images, perImage * images);
    }

    /// <summary>How the convolution runs, in words (`dsl run` prints it).</summary>
    public string Lowering =>
        Direct ? "direct" : Fft ? $"FFT {FftHeight}x{FftWidth}" : Winograd ? $"Winograd F({WinogradTile}x{WinogradTile},{WinogradKernel}x{WinogradKernel})" : Shifted ? "shifted GEMM" : Elements == 0 ? "GEMM (1x1)" :
        Shared ? "im2col + GEMM in chunks" : "im2col + GEMM";

    /// <summary>A 1x1, stride-1, unpadded window reads the input as it is: no columns needed.</summary>
    public static bool IsIdentity(Window w) =>
        w.KernelH == 1 && w.KernelW == 1 && w.StrideH == 1 && w.StrideW == 1 &&
        w.Padding.Top == 0 && w.Padding.Left == 0 && w.Padding.Bottom == 0 && w.Padding.Right == 0;

    /// <summary>Values of the shared buffer a network needs: the largest chunk.</summary>
    public static long SharedElements(CnnDsl.Graph.Graph graph, int batch) =>
        graph.Nodes.Where(n => n.Kind.IsConv || n.Kind.IsFixedConv)
            .Select(n => For(n, batch)).Where(p => p.Shared).Select(p => p.Elements).DefaultIfEmpty(0).Max();
}

/// <summary>The column buffer that the chunked convolutions of one network share (only one
/// layer runs at a time).</summary>
public sealed class SharedColumns<T>(long elements) where T : unmanaged
{
    public T[] Columns { get; } = new T[elements];
}
