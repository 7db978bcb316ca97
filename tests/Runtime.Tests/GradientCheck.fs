/// The one gradient check that serves every layer (as Caffe's GradientChecker does): the
/// runtime's own GradientCheck (also behind `dsl gradcheck`), asserted on every backend.
module CnnDsl.Runtime.Tests.GradientCheck

open CnnDsl.Runtime
open CnnDsl.Runtime.Tests.TestSupport

let tolerance = GradientCheck.Tolerance

/// Fails, naming the layer, the tensor and the element, when any gradient is off.
let assertGradients (text: string) (batch: int) =
    onEveryBackend (fun () ->
        let net = Network<double>(graph text, batch, 7, true)
        for e in GradientCheck.Run(net, 11, 24) do
            if e.Worst > tolerance then
                failwithf "%s %s: gradient [%d] is %.10g, finite differences give %.10g (error %.2e)\nmodel:\n%s"
                    e.Layer e.Tensor e.Index e.Analytic e.Numerical e.Worst text)
    true
