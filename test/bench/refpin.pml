/* RefPin(N, VARIANT) in Promela: shared/conformance/RefPin.md to the letter.
 *
 *   spin -a -DN=6 [-DPLAIN] refpin.pml
 *   gcc -O2 -DSAFETY -DNOREDUCE -DMEMLIM=8000 -o pan pan.c && ./pan -m100000
 *
 * Shortest counterexample: add -DBFS to both spin and gcc.
 *
 * States: the global variables are RefPin's variables (devices 0-based), the only
 * process sits at its loop head between steps, each action is one d_step, and
 * temporaries are zeroed before a step ends. So SPIN's "states, stored" is RefPin's
 * distinct-state count and its "transitions" (stored + matched) is the generated
 * count with the initial state included (TLC's count, refcheck's generatedStates).
 * Terminal states are valid end states (label end:), no -E needed.
 *
 * Counts (active holds every invariant; refcheck, this model under pan, and
 * test/bench/refpin-naive.ts agree on every figure they all have):
 *
 *   N  distinct    generated    depth  SPIN stored  source
 *   1          42          126      5           42  SPIN, naive
 *   2         330        1,604      8          330  SPIN, naive
 *   3       2,814       18,944     11        2,814  SPIN, naive
 *   4      25,314      217,244     14       25,314  SPIN, naive
 *   5     235,662    2,454,116     17      235,662  SPIN, naive
 *   6   2,243,490   27,448,064     20    2,243,490  SPIN, naive
 *   7  21,679,854  304,585,904     23   21,679,854  SPIN, refcheck (a Set cannot hold N = 7)
 *
 * plain (whole graph, -DNOINV; naive to N = 5):
 *   N = 1..6 distinct 76, 598, 5,374, 51,442, 505,606, 5,021,938;
 *   generated 218, 2,860, 35,920, 439,516, 5,245,228, 61,209,280; depth 5, 8, .., 20.
 *   Safe fails (err = 2) at BFS depth 2: CloseVm, FileAdd(1), for every N.
 *
 * depth = BFS levels - 1 (pan -DBFS "depth reached"); the DFS depth is larger.
 * The naive checker prints generated (initial state included) and transitions
 * (successors only, = generated - 1).
 */

#ifndef N
#define N 3
#endif

/* One process, one d_step per action: every action is one transition and
 * no intermediate state is ever stored. Temporaries are written before they are
 * read and zeroed before the step ends, so they never tell two states apart;
 * they are hidden (out of the state vector) except under BFS, which forbids
 * hidden variables: pass -DBFS to spin as well as to gcc. */

bool vmFd = 1;
byte vmRef = 1;
byte vmState = 0;
byte kvmUsers = 2;
bool kvmFreed = 0;
bool devFd = 1;
byte err = 0;
bool dfFd[N] = 1;
byte dfRef[N] = 1;
bool dfFreed[N];
bool kvf[N];
bool assoc[N];
bool bound[N];
bool pin[N];

#ifdef BFS
#define TEMP
#else
#define TEMP hidden
#endif
TEMP byte nw;
TEMP byte old;
TEMP byte j;

/* Sums and conjunctions over the N devices (N <= 8). */
#define S1(a) (a[0])
#define S2(a) (S1(a) + a[1])
#define S3(a) (S2(a) + a[2])
#define S4(a) (S3(a) + a[3])
#define S5(a) (S4(a) + a[4])
#define S6(a) (S5(a) + a[5])
#define S7(a) (S6(a) + a[6])
#define S8(a) (S7(a) + a[7])
#define XCAT(x, y) x ## y
#define CAT(x, y) XCAT(x, y)
#define SUM(a) CAT(S, N)(a)

#define Safe (err == 0)
#define VmRefExact (vmState != 0 || vmRef == vmFd + SUM(assoc) + SUM(pin))
#define NoLeak (!(!vmFd && !devFd && SUM(dfFd) == 0 && vmState != 1) || \
                (kvmFreed && vmState == 2 && SUM(dfFreed) == N))
#define INV (Safe && VmRefExact && NoLeak)

inline fault(e) {
  if
  :: err == 0 -> err = e
  :: else -> skip
  fi
}

inline vmGet() {
  if
  :: vmState == 2 -> fault(1)
  :: else ->
     if
     :: vmRef == 0 -> fault(2)
     :: else -> vmRef++
     fi
  fi
}

inline vmGetActive(r) {
  if
  :: vmRef > 0 -> vmRef++; r = 1
  :: else -> r = 0
  fi
}

inline vmPut() {
  if
  :: vmRef == 0 -> fault(3)
  :: else ->
     vmRef--;
     if
     :: vmRef == 0 -> vmState = 1
     :: else -> skip
     fi
  fi
}

inline kvmPut() {
  if
  :: kvmUsers == 0 -> fault(3)
  :: else ->
     kvmUsers--;
     if
     :: kvmUsers == 0 -> kvmFreed = 1
     :: else -> skip
     fi
  fi
}

inline dfGet(i) {
  if
  :: dfFreed[i] -> fault(1)
  :: else ->
     if
     :: dfRef[i] == 0 -> fault(2)
     :: else -> dfRef[i]++
     fi
  fi
}

inline dfPut(i) {
  if
  :: dfRef[i] == 0 -> fault(3)
  :: else ->
     dfRef[i]--;
     if
     :: dfRef[i] == 0 ->
        dfFreed[i] = 1;
        if
        :: bound[i] ->
           bound[i] = 0;
           if
           :: pin[i] -> pin[i] = 0; vmPut()
           :: else -> skip
           fi
        :: else -> skip
        fi
     :: else -> skip
     fi
  fi
}

/* vfio_kvm_file_replace on file i */
inline setKvm(i, attach) {
  nw = 0;
  if
  :: attach ->
     if
     :: kvmFreed -> fault(1)
#ifdef PLAIN
     :: else -> vmGet(); nw = 1
#else
     :: else -> vmGetActive(nw)
#endif
     fi
  :: else -> skip
  fi;
  old = assoc[i];
  assoc[i] = nw;
  if
  :: old -> vmPut()
  :: else -> skip
  fi;
  nw = 0;
  old = 0
}

/* The actions of device k (0-based: device k+1 of RefPin.md). */
#define DEVICE(k) \
  :: d_step { devFd && dfFd[k] && !kvf[k] -> PRE; dfGet(k); kvf[k] = 1; setKvm(k, 1); CHECK } \
  :: d_step { devFd && dfFd[k] && kvf[k] -> PRE; setKvm(k, 0); kvf[k] = 0; dfPut(k); CHECK } \
  :: d_step { dfFd[k] && !bound[k] -> PRE; \
       bound[k] = 1; if :: assoc[k] -> pin[k] = 1; vmGet() :: else -> skip fi; CHECK } \
  :: d_step { dfFd[k] && bound[k] -> PRE; \
       bound[k] = 0; if :: pin[k] -> pin[k] = 0; vmPut() :: else -> skip fi; CHECK } \
  :: d_step { dfFd[k] -> PRE; dfFd[k] = 0; dfPut(k); CHECK }

/* Invariants: by default every step asserts INV on its source state (PRE: this
 * is what checks the initial state) and on the state it creates (CHECK), inside
 * the d_step, so no state or transition is added and a counterexample ends with
 * the faulty action. Alternatives, same stored states but about 2x slower:
 * -DLTL, a never claim (DFS: one more transition, the claim's first move, and
 * twice the depth); -DMONITOR, a monitor process (its assert adds one step to
 * the trail). -DNOINV checks nothing (whole graph of plain). */
#if defined(LTL) || defined(MONITOR) || defined(NOINV)
#define PRE skip
#define CHECK skip
#else
#define PRE assert(INV)
#define CHECK assert(INV)
#endif

active proctype refpin() {
end:
  do
  :: d_step { vmFd -> PRE; vmFd = 0; vmPut(); CHECK }
  :: d_step { vmState == 1 -> PRE; vmState = 2; kvmPut(); CHECK }
  :: d_step { devFd -> PRE;
       devFd = 0;
       j = 0;
       do
       :: j < N ->
          if
          :: kvf[j] -> setKvm(j, 0); kvf[j] = 0; dfPut(j)
          :: else -> skip
          fi;
          j++
       :: else -> break
       od;
       j = 0;
       kvmPut();
       CHECK }
  DEVICE(0)
#if N > 1
  DEVICE(1)
#endif
#if N > 2
  DEVICE(2)
#endif
#if N > 3
  DEVICE(3)
#endif
#if N > 4
  DEVICE(4)
#endif
#if N > 5
  DEVICE(5)
#endif
#if N > 6
  DEVICE(6)
#endif
#if N > 7
  DEVICE(7)
#endif
  od
}

#ifdef MONITOR
active proctype monitor() {
end:
  do
  :: d_step { !(INV) -> assert(INV) }
  od
}
#endif

#ifdef LTL
ltl inv { [] (INV) }
#endif
