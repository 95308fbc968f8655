import sys,collections,re
# stacks.py FILE owner [N]         : each sample charged to its nearest Gateway or Kestrel frame (by owner, then by frame)
# stacks.py FILE leaves OWNER [N]  : for samples whose nearest Gateway/Kestrel frame contains OWNER, their leaf functions
# FILE: `perf script -F comm,ip,sym` output of a `perf record -g` (see prof.sh).
def stacks(f):
    cur=[]
    for l in open(f):
        l=l.rstrip('\n')
        if not l.strip():
            if cur: yield cur; cur=[]
            continue
        if l[0] not in ' \t': continue
        cur.append(l.strip().split(' ',1)[-1])
    if cur: yield cur
def owner(s):
    for x in s:
        if x.startswith('Gateway_Core_Gateway_'): return 'gateway', x
        if 'Kestrel' in x: return 'kestrel', x
    return 'other', s[0]
def short(x): return re.sub(r'Microsoft_AspNetCore_Server_Kestrel_Core_Microsoft_AspNetCore_Server_Kestrel_Core_Internal_','K:',re.sub(r'S_P_CoreLib_System_','CL:',re.sub('Gateway_Core_Gateway_','G:',x)))[:150]
file, mode = sys.argv[1], sys.argv[2]
by_owner=collections.Counter(); by=collections.Counter(); n=0; hit=0
for s in stacks(file):
    n+=1; o,f=owner(s)
    if mode=='owner': by_owner[o]+=1; by[f]+=1
    elif sys.argv[3] in f: hit+=1; by[s[0]]+=1
top=int(sys.argv[-1]) if sys.argv[-1].isdigit() else 40
if mode=='owner':
    for k,v in by_owner.most_common(): print(f'{100*v/n:6.2f} {k}')
else: print(f'{100*hit/n:.2f}%')
for k,v in by.most_common(top): print(f'{100*v/n:6.2f}  {short(k)}')
