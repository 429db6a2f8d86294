using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using LlavaNative.IsaCheck;

// Prints the ISA the runtime granted (the launching test checks it is the one it asked for), then
// compares every dispatched kernel with its scalar reference. Exit code 0: all agree; 1: a mismatch.
Console.WriteLine($"Avx512F.IsSupported={Avx512F.IsSupported}");
Console.WriteLine($"Avx512BW.IsSupported={Avx512BW.IsSupported}");
Console.WriteLine($"Avx2.IsSupported={Avx2.IsSupported}");
Console.WriteLine($"Vector256.IsHardwareAccelerated={Vector256.IsHardwareAccelerated}");
Console.WriteLine($"Vector512.IsHardwareAccelerated={Vector512.IsHardwareAccelerated}");
var failures = KernelAgreement.Run(Console.Out) + OpsAgreement.Run(Console.Out) + GemmAgreement.Run(Console.Out);
Console.WriteLine(failures == 0 ? "isa-check: all kernels agree with their scalar references" : $"isa-check: {failures} mismatches");
return failures == 0 ? 0 : 1;
