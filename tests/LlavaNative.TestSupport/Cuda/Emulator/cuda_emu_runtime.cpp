// The emulator's scheduler (see cuda_emu.h) and its C entry point. Linked with the kernel units and the
// generated dispatch table (kernel name → a function that unpacks cuLaunchKernel's void** arguments).
#include "cuda_emu.h"

#include <cstdio>
#include <cstdlib>
#include <ucontext.h>
#include <vector>

namespace llava_emu
{
    thread_local llava_emu_uint3 t_threadIdx;
    thread_local llava_emu_uint3 t_blockIdx;
    thread_local llava_emu_dim3 t_blockDim;
    thread_local llava_emu_dim3 t_gridDim;

    using Launcher = void (*)(void** args);

    namespace
    {
        constexpr std::size_t StackBytes = 256 * 1024;

        struct Barrier
        {
            int participants = 0; // threads still running that take part
            int arrived = 0;
            unsigned generation = 0;
        };

        struct Fiber
        {
            ucontext_t context;
            llava_emu_uint3 index;
            int linear = 0;
            bool started = false, finished = false;
        };

        struct Block
        {
            std::vector<Fiber> fibers;
            std::vector<Barrier> warps;
            std::vector<std::uint64_t> slots; // [warp][lane] shuffle values
            std::vector<std::uint32_t> gather; // [thread][8] all-gather words
            Barrier block;
            ucontext_t scheduler;
            Fiber* current = nullptr;
            Launcher launcher = nullptr;
            void** args = nullptr;
            unsigned long long releases = 0; // barrier completions and thread exits: the scheduler's progress measure
            char* stacks = nullptr;
        };

        thread_local Block* t_block = nullptr;

        void yield_to_scheduler()
        {
            Block& b = *t_block;
            swapcontext(&b.current->context, &b.scheduler);
        }

        // Arrive at `barrier`; returns once every participant has arrived.
        void arrive_and_wait(Barrier& barrier)
        {
            const unsigned generation = barrier.generation;
            if (++barrier.arrived >= barrier.participants)
            {
                barrier.arrived = 0;
                barrier.generation++;
                t_block->releases++;
                return;
            }
            while (barrier.generation == generation) yield_to_scheduler();
        }

        // A thread leaving: it no longer counts for its barriers, which may complete now.
        void leave(Barrier& barrier)
        {
            barrier.participants--;
            if (barrier.arrived > 0 && barrier.arrived >= barrier.participants)
            {
                barrier.arrived = 0;
                barrier.generation++;
            }
        }

        void fiber_entry()
        {
            Block& b = *t_block;
            b.launcher(b.args);
            b.current->finished = true;
            b.releases++;
            leave(b.block);
            leave(b.warps[b.current->linear / 32]);
            // Returning resumes uc_link (the scheduler).
        }
    }

    void sync_block() { arrive_and_wait(t_block->block); }

    int lane_id() { return t_block->current->linear % 32; }

    std::uint64_t warp_exchange(std::uint64_t value, int source)
    {
        Block& b = *t_block;
        const int linear = b.current->linear, warp = linear / 32;
        const int threads = (int)b.fibers.size();
        b.slots[linear] = value;
        arrive_and_wait(b.warps[warp]);
        const int sourceLinear = warp * 32 + source;
        const std::uint64_t result = (source >= 0 && source < 32 && sourceLinear < threads) ? b.slots[sourceLinear] : value;
        arrive_and_wait(b.warps[warp]); // nobody overwrites a slot before every lane has read
        return result;
    }

    void warp_all_gather(const std::uint32_t* mine, int count, std::uint32_t* all)
    {
        Block& b = *t_block;
        const int linear = b.current->linear, warp = linear / 32;
        const int threads = (int)b.fibers.size();
        for (int i = 0; i < 8; i++) b.gather[(std::size_t)linear * 8 + i] = i < count ? mine[i] : 0;
        arrive_and_wait(b.warps[warp]);
        for (int lane = 0; lane < 32; lane++)
        {
            const int source = warp * 32 + lane;
            for (int i = 0; i < count; i++) all[lane * count + i] = source < threads ? b.gather[(std::size_t)source * 8 + i] : 0;
        }
        arrive_and_wait(b.warps[warp]);
    }

    // Runs one block to completion; returns false (with a message) on a deadlock.
    bool run_block(Block& b, char* error, int errorCapacity)
    {
        const int threads = (int)b.fibers.size();
        b.block = Barrier{threads, 0, 0};
        for (std::size_t w = 0; w < b.warps.size(); w++)
        {
            const int lanes = threads - (int)w * 32 < 32 ? threads - (int)w * 32 : 32;
            b.warps[w] = Barrier{lanes, 0, 0};
        }
        for (int i = 0; i < threads; i++)
        {
            Fiber& f = b.fibers[i];
            f.started = f.finished = false;
            getcontext(&f.context);
            f.context.uc_stack.ss_sp = b.stacks + (std::size_t)i * StackBytes;
            f.context.uc_stack.ss_size = StackBytes;
            f.context.uc_link = &b.scheduler;
            makecontext(&f.context, fiber_entry, 0);
        }
        int live = threads;
        while (live > 0)
        {
            const unsigned long long before = b.releases;
            bool anyStarted = false;
            for (int i = 0; i < threads; i++)
            {
                Fiber& f = b.fibers[i];
                if (f.finished) continue;
                if (!f.started) { f.started = true; anyStarted = true; }
                b.current = &f;
                t_threadIdx = f.index;
                swapcontext(&b.scheduler, &f.context);
                if (f.finished) live--;
            }
            if (live > 0 && !anyStarted && b.releases == before)
            {
                std::snprintf(error, errorCapacity,
                    "deadlock in block (%u,%u,%u): %d of %d threads wait at a barrier (__syncthreads or a warp shuffle) that the others never reach",
                    t_blockIdx.x, t_blockIdx.y, t_blockIdx.z, live, threads);
                return false;
            }
        }
        return true;
    }
}

extern "C" int llava_emu_run(llava_emu::Launcher launcher, unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by,
    unsigned bz, void** args, char* error, int errorCapacity)
{
    using namespace llava_emu;
    const unsigned long long threads = (unsigned long long)bx * by * bz;
    if (threads == 0 || threads > 1024)
    {
        std::snprintf(error, errorCapacity, "block of %llu threads (CUDA allows 1 to 1024)", threads);
        return 1;
    }
    if (gy > 65535 || gz > 65535)
    {
        std::snprintf(error, errorCapacity, "grid (%u,%u,%u): y and z are limited to 65535", gx, gy, gz);
        return 1;
    }
    Block block;
    block.fibers.resize(threads);
    block.warps.resize((threads + 31) / 32);
    block.slots.resize(threads);
    block.gather.resize(threads * 8);
    block.launcher = launcher;
    block.args = args;
    block.stacks = static_cast<char*>(std::malloc(threads * StackBytes));
    if (block.stacks == nullptr)
    {
        std::snprintf(error, errorCapacity, "out of memory for %llu fiber stacks", threads);
        return 1;
    }
    for (unsigned z = 0, i = 0; z < bz; z++)
        for (unsigned y = 0; y < by; y++)
            for (unsigned x = 0; x < bx; x++, i++)
            {
                block.fibers[i].index = {x, y, z};
                block.fibers[i].linear = (int)i;
            }
    Block* previous = t_block;
    t_block = &block;
    t_blockDim = {bx, by, bz};
    t_gridDim = {gx, gy, gz};
    int status = 0;
    for (unsigned z = 0; z < gz && status == 0; z++)
        for (unsigned y = 0; y < gy && status == 0; y++)
            for (unsigned x = 0; x < gx && status == 0; x++)
            {
                t_blockIdx = {x, y, z};
                if (!run_block(block, error, errorCapacity)) status = 2;
            }
    t_block = previous;
    std::free(block.stacks);
    return status;
}
