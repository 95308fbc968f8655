import sys,collections,re
# owner.py FILE: attribute each sample to the first (nearest the leaf) frame that is Gateway or Kestrel code; report by that frame and by owner
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
own=collections.Counter(); fr=collections.Counter(); n=0
for s in stacks(sys.argv[1]):
    n+=1
    o='other'; f=s[0]
    for x in s:
        if x.startswith('Gateway_Core_Gateway_'): o='gateway'; f=x; break
        if 'Kestrel' in x: o='kestrel'; f=x; break
    own[o]+=1; fr[f]+=1
for k,v in own.most_common(): print(f'{100*v/n:6.2f} {k}')
def short(x): return re.sub(r'Microsoft_AspNetCore_Server_Kestrel_Core_Microsoft_AspNetCore_Server_Kestrel_Core_Internal_','K:',re.sub(r'S_P_CoreLib_System_','CL:',re.sub('Gateway_Core_Gateway_','G:',x)))[:150]
for k,v in fr.most_common(int(sys.argv[2]) if len(sys.argv)>2 else 40): print(f'{100*v/n:6.2f}  {short(k)}')
